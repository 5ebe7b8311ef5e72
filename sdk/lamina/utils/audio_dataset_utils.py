"""``audio_dataset_from_directory``: a directory of ``.wav`` files as a Lamina dataset.

WAV files are read with the standard library's ``wave`` module (PCM, 8 to 32 bits),
scaled to float32 in ``[-1, 1)`` as ``tf.audio.decode_wav`` does.
"""

from __future__ import annotations

import numpy as np

from lamina.utils import dataset_utils

ALLOWED_FORMATS = (".wav",)


def read_wav(path, output_sequence_length=None):
    """A WAV file as ``(audio, sample_rate)``: float32 ``(samples, channels)``.

    Args:
        path: the file.
        output_sequence_length: cut or zero-pad to this many samples (None keeps all).

    Raises:
        ValueError: for a sample width ``wave`` reads but that is not 1 to 4 bytes.
    """
    import wave

    with wave.open(str(path), "rb") as f:
        channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
        raw = f.readframes(f.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.int32) - 128) / 128.0
    elif width in (2, 4):
        dtype = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(raw, dtype).astype(np.float64) / float(2 ** (8 * width - 1))
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        samples = np.where(value >= 1 << 23, value - (1 << 24), value) / float(1 << 23)
    else:
        raise ValueError(f"Unsupported WAV sample width. Received: {width} bytes in {path}")
    audio = samples.astype(np.float32).reshape(-1, channels)
    if output_sequence_length is not None:
        n = output_sequence_length
        audio = audio[:n] if len(audio) >= n else np.pad(audio, ((0, n - len(audio)), (0, 0)))
    return audio, rate


def _padded(elements):
    """Keras's ``padded_batch``: zero-pad every axis to the batch's largest clip."""
    audios = [e[0] if isinstance(e, tuple) else e for e in elements]
    shape = np.max([a.shape for a in audios], axis=0)
    x = np.stack([np.pad(a, [(0, m - s) for s, m in zip(a.shape, shape)]) for a in audios])
    if isinstance(elements[0], tuple):
        return x, np.stack([e[1] for e in elements])
    return x


def audio_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, batch_size=32, sampling_rate=None,
                                 output_sequence_length=None, ragged=False, shuffle=True,
                                 seed=None, validation_split=None, subset=None,
                                 follow_links=False, verbose=True):
    """A dataset of the ``.wav`` files in ``directory``
    (``keras.utils.audio_dataset_from_directory``).

    The layout, labels, file order for a ``seed``, splits and shuffling are those of
    :func:`~lamina.utils.image_dataset_utils.image_dataset_from_directory`. Each element
    is float32 audio ``(samples, channels)``; a batch is zero-padded to its longest
    clip, or every clip is cut/padded to ``output_sequence_length``.

    Args:
        directory: the data directory (one subdirectory per class with
            ``labels="inferred"``).
        labels: ``"inferred"``, None, or a list/tuple of integer labels, one per file.
        label_mode: ``"int"``, ``"categorical"``, ``"binary"`` or None.
        class_names: with ``labels="inferred"``, the subdirectories to use, in order.
        batch_size: clips per batch; None gives single clips.
        sampling_rate: the sample rate the files must have (Keras resamples with
            ``tensorflow-io``; Lamina does not resample and refuses a file at another
            rate).
        output_sequence_length: cut or zero-pad every clip to this many samples.
        ragged: Keras's ragged batches; not available (Lamina has no ragged tensors).
        shuffle: shuffle the data.
        seed: the shuffling seed (needed with ``validation_split`` and ``shuffle``).
        validation_split: the fraction of the files kept for validation.
        subset: ``"training"``, ``"validation"`` or ``"both"``.
        follow_links: follow symbolic links to subdirectories.
        verbose: print how many files were found.

    Returns:
        A :class:`~lamina.utils.dataset_utils.BatchDataset` of ``(audio, labels)`` (or
        audio), with ``class_names``; a list of two with ``subset="both"``.

    Raises:
        ValueError: for any invalid argument, ``ragged=True``, a file whose rate is not
            ``sampling_rate``, or no audio files.
    """
    dataset_utils.check_labels_arg(labels, label_mode, class_names, "audio")
    if ragged and output_sequence_length is not None:
        raise ValueError("Cannot set both `ragged` and `output_sequence_length`. Received: "
                         f"ragged={ragged}, output_sequence_length={output_sequence_length}")
    if ragged:
        raise ValueError("Lamina has no ragged tensors: use `output_sequence_length` or the "
                         "default padded batches. Received: ragged=True")
    if sampling_rate is not None:
        if not isinstance(sampling_rate, int):
            raise ValueError("`sampling_rate` should have an integer value. "
                             f"Received: sampling_rate={sampling_rate}")
        if sampling_rate <= 0:
            raise ValueError("`sampling_rate` should be higher than 0. "
                             f"Received: sampling_rate={sampling_rate}")
    if labels is None or label_mode is None:
        labels = label_mode = None
    dataset_utils.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labels, class_names = dataset_utils.index_directory(
        directory, labels, formats=ALLOWED_FORMATS, class_names=class_names, shuffle=shuffle,
        seed=seed, follow_links=follow_links, verbose=verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 '
                         f"class_names. Received: class_names={class_names}")

    def read(path):
        audio, rate = read_wav(path, output_sequence_length)
        if sampling_rate is not None and rate != sampling_rate:
            raise ValueError(f"{path} is sampled at {rate} Hz and Lamina does not resample. "
                             f"Received: sampling_rate={sampling_rate}")
        return audio

    return dataset_utils.files_to_datasets(directory, paths, labels, class_names, label_mode,
                                           validation_split, subset, batch_size, shuffle,
                                           seed, read, "audio files", ALLOWED_FORMATS,
                                           collate=_padded)

"""``text_dataset_from_directory``: a directory of ``.txt`` files as a Lamina dataset."""

from __future__ import annotations

import numpy as np

from lamina.utils import dataset_utils


def text_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                class_names=None, batch_size=32, max_length=None, shuffle=True,
                                seed=None, validation_split=None, subset=None,
                                follow_links=False, format="tf", verbose=True):
    """A dataset of the ``.txt`` files in ``directory``
    (``keras.utils.text_dataset_from_directory``).

    The layout, labels, file order for a ``seed``, splits and shuffling are those of
    :func:`~lamina.utils.image_dataset_utils.image_dataset_from_directory`. Each text is
    the file's content as a ``str`` (first ``max_length`` characters); a batch of texts
    is a numpy array of ``str``.

    Args:
        directory: the data directory (one subdirectory per class with
            ``labels="inferred"``).
        labels: ``"inferred"``, None, or a list/tuple of integer labels, one per file.
        label_mode: ``"int"``, ``"categorical"``, ``"binary"`` or None.
        class_names: with ``labels="inferred"``, the subdirectories to use, in order.
        batch_size: texts per batch; None gives single texts.
        max_length: keep at most this many characters of each text.
        shuffle: shuffle the data.
        seed: the shuffling seed (needed with ``validation_split`` and ``shuffle``).
        validation_split: the fraction of the files kept for validation.
        subset: ``"training"``, ``"validation"`` or ``"both"``.
        follow_links: follow symbolic links to subdirectories.
        format: ``"tf"`` or ``"grain"``, accepted for compatibility (a Lamina dataset
            either way).
        verbose: print how many files were found.

    Returns:
        A :class:`~lamina.utils.dataset_utils.BatchDataset` of ``(texts, labels)`` (or
        texts), with ``class_names``; a list of two with ``subset="both"``.

    Raises:
        ValueError: for any invalid argument, or no text files.
    """
    dataset_utils.check_labels_arg(labels, label_mode, class_names, "text")
    if format not in ("tf", "grain"):
        raise ValueError(f'`format` should be either "tf" or "grain". Received: format={format}')
    if labels is None or label_mode is None:
        labels = label_mode = None
    dataset_utils.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labels, class_names = dataset_utils.index_directory(
        directory, labels, formats=(".txt",), class_names=class_names, shuffle=shuffle,
        seed=seed, follow_links=follow_links, verbose=verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 '
                         f"class_names. Received: class_names={class_names}")

    def read(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return text if max_length is None else text[:max_length]

    return dataset_utils.files_to_datasets(directory, paths, labels, class_names, label_mode,
                                           validation_split, subset, batch_size, shuffle,
                                           seed, read, "text files", (".txt",))

"""``image_dataset_from_directory``: a directory of images as a Lamina dataset."""

from __future__ import annotations

import numpy as np

from lamina.utils import dataset_utils

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                   "gaussian", "mitchellcubic")
_CHANNELS = {"rgb": 3, "rgba": 4, "grayscale": 1}


def load_image(path, image_size, num_channels, interpolation, data_format,
               crop_to_aspect_ratio=False, pad_to_aspect_ratio=False):
    """One image file as a float32 array of ``image_size`` (Keras's loading: Pillow
    decode, colour conversion, then ``ops.image.resize``)."""
    from lamina import ops
    from lamina.utils.image_utils import _pil

    image = _pil()
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError("Only one of `pad_to_aspect_ratio`, `crop_to_aspect_ratio` can be "
                         "set to `True`.")
    with image.open(path) as img:
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[num_channels]
        if num_channels == 1 and img.mode in ("L", "I;16", "I"):
            mode = img.mode
        array = np.array(img if img.mode == mode else img.convert(mode), dtype="float32")
    if array.ndim == 2:
        array = array[..., None]
    if data_format == "channels_first":
        array = array.transpose(2, 0, 1)
    out = ops.image.resize(array, size=tuple(image_size), interpolation=interpolation,
                           crop_to_aspect_ratio=crop_to_aspect_ratio,
                           pad_to_aspect_ratio=pad_to_aspect_ratio, data_format=data_format)
    return np.asarray(ops.convert_to_numpy(out), dtype="float32")


def _make(paths, labels, label_mode, num_classes, args, batch_size, shuffle, seed,
          class_names):
    def load(i):
        x = load_image(paths[i], *args)
        if label_mode is None:
            return x
        return x, dataset_utils.encode_label(labels[i], label_mode, num_classes)

    return dataset_utils.BatchDataset(len(paths), load, batch_size, shuffle, seed,
                                      class_names=class_names, file_paths=list(paths))


def image_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, color_mode="rgb", batch_size=32,
                                 image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear",
                                 follow_links=False, crop_to_aspect_ratio=False,
                                 pad_to_aspect_ratio=False, data_format=None, format="tf",
                                 verbose=True):
    """A dataset of the images in ``directory`` (``keras.utils.image_dataset_from_directory``).

    With ``labels="inferred"`` the directory holds one subdirectory per class::

        main_directory/
            class_a/ a_image_1.jpg, a_image_2.jpg
            class_b/ b_image_1.jpg, b_image_2.jpg

    Files are found, labelled and (with ``shuffle``) shuffled exactly as Keras does for
    the same ``seed`` (``dataset.file_paths`` is the same list); each pass over the
    dataset then reshuffles (with ``shuffle``) from a generator seeded with ``seed``.
    Images are decoded with Pillow, converted to ``color_mode`` and resized with
    ``ops.image.resize``; they are float32 in ``0..255``.

    Args:
        directory: the data directory.
        labels: ``"inferred"`` (from subdirectories), None (no labels), or a list/tuple of
            integer labels, one per file in sorted path order.
        label_mode: ``"int"`` (int32), ``"categorical"`` (one-hot float32),
            ``"binary"`` (float32 ``(1,)``, exactly 2 classes) or None (no labels).
        class_names: with ``labels="inferred"``, the subdirectories to use, in order.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"`` (1, 3 or 4 channels).
        batch_size: images per batch; None gives single images.
        image_size: ``(height, width)`` (an int for a square).
        shuffle: shuffle the data.
        seed: the shuffling seed (needed with ``validation_split`` and ``shuffle``).
        validation_split: the fraction of the files kept for validation.
        subset: ``"training"``, ``"validation"`` or ``"both"`` (returns both datasets).
        interpolation: the resize interpolation.
        follow_links: follow symbolic links to subdirectories.
        crop_to_aspect_ratio: crop the centre to the target aspect ratio before resizing.
        pad_to_aspect_ratio: pad to the target aspect ratio before resizing.
        data_format: ``"channels_last"`` or ``"channels_first"``; None uses
            ``image_data_format()``.
        format: ``"tf"`` or ``"grain"``, accepted for Keras compatibility; either way the
            result is a Lamina :class:`~lamina.utils.dataset_utils.BatchDataset`.
        verbose: print how many files were found.

    Returns:
        A :class:`~lamina.utils.dataset_utils.BatchDataset` of ``(images, labels)`` (or
        images alone) with ``class_names`` and ``file_paths``; a list of two with
        ``subset="both"``.

    Raises:
        ValueError: for any invalid argument (named with the value received), or no images.
    """
    from lamina.utils.image_utils import _data_format

    dataset_utils.check_labels_arg(labels, label_mode, class_names, "image")
    if labels is None or label_mode is None:
        labels = label_mode = None
    if color_mode not in _CHANNELS:
        raise ValueError('`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
                         f"Received: color_mode={color_mode}")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    elif not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ValueError("Invalid `image_size` value. Expected a tuple of 2 integers. "
                         f"Received: image_size={image_size}")
    interpolation = interpolation.lower()
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"Argument `interpolation` should be one of {_INTERPOLATIONS}. "
                         f"Received: interpolation={interpolation}")
    if format not in ("tf", "grain"):
        raise ValueError(f'`format` should be either "tf" or "grain". Received: format={format}')
    dataset_utils.check_validation_split_arg(validation_split, subset, shuffle, seed)
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labels, class_names = dataset_utils.index_directory(
        directory, labels, formats=ALLOWLIST_FORMATS, class_names=class_names,
        shuffle=shuffle, seed=seed, follow_links=follow_links, verbose=verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 '
                         f"class_names. Received: class_names={class_names}")
    args = (image_size, _CHANNELS[color_mode], interpolation, _data_format(data_format),
            crop_to_aspect_ratio, pad_to_aspect_ratio)
    num_classes = len(class_names) if class_names else 0
    subsets = ["training", "validation"] if subset == "both" else [subset]
    datasets = []
    for part in subsets:
        part_paths, part_labels = dataset_utils.training_or_validation_split(
            paths, labels, validation_split, part)
        if not part_paths:
            what = f"{part} images" if subset == "both" else "images"
            raise ValueError(f"No {what} found in directory {directory}. "
                             f"Allowed formats: {ALLOWLIST_FORMATS}")
        datasets.append(_make(part_paths, part_labels, label_mode, num_classes, args,
                              batch_size, shuffle and not (subset == "both" and
                                                           part == "validation"),
                              seed, class_names))
    return datasets if subset == "both" else datasets[0]

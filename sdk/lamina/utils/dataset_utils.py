"""Lamina's dataset object and the directory indexing shared by the
``*_dataset_from_directory`` functions; ``split_dataset``.

Keras returns ``tf.data.Dataset`` objects. Lamina returns a :class:`BatchDataset`: an
iterable of batches (``(x, y)`` tuples, or ``x`` alone without labels) that ``fit``,
``evaluate`` and ``predict`` take like any iterable of batches, with
``class_names``/``file_paths`` as Keras sets them, ``len()`` (the number of batches)
and :meth:`BatchDataset.as_arrays` to get everything as arrays at once; the
``tf.data``-style chaining (``take``, ``map``, ``cache``, ``prefetch``, ``cardinality``) comes
from :class:`~lamina.utils.dataset_pipeline.DatasetPipeline`.
"""

from __future__ import annotations

import os
import random

import numpy as np

from lamina.utils.dataset_pipeline import DatasetPipeline, eager_leaves


class BatchDataset(DatasetPipeline):
    """An iterable of batches built from ``size`` indexed elements.

    Each pass (``iter(dataset)``, one per epoch in ``fit``) reads the elements in order,
    or, with ``shuffle``, in a new permutation drawn from a generator seeded once with
    ``seed`` (so the epochs differ and a run is repeatable).

    Args:
        size: the number of elements.
        load: ``load(i)`` returns element ``i``: an array, a string, or a tuple of them.
        batch_size: elements per batch; None yields the elements one by one.
        shuffle: reshuffle the elements at each pass.
        seed: the shuffling seed.
        class_names: the class names (Keras sets ``dataset.class_names``).
        file_paths: the file of each element, when elements come from files.
        collate: ``collate(elements)`` makes one batch; by default each component is
            stacked with ``np.stack``.
    """

    def __init__(self, size, load, batch_size=None, shuffle=False, seed=None,
                 class_names=None, file_paths=None, collate=None):
        if batch_size is not None and (isinstance(batch_size, bool) or
                                       not isinstance(batch_size, (int, np.integer)) or
                                       batch_size <= 0):
            raise ValueError("`batch_size` must be a positive integer or None. "
                             f"Received: batch_size={batch_size!r}")
        self.size = int(size)
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.class_names = class_names
        self.file_paths = file_paths
        self._load = load
        self._collate = collate or stack_elements
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        if self.batch_size is None:
            return self.size
        return -(-self.size // self.batch_size)

    def _order(self, shuffle):
        if shuffle:
            return self._rng.permutation(self.size)
        return np.arange(self.size)

    def _iterate(self, shuffle):
        order = self._order(shuffle)
        if self.batch_size is None:
            for i in order:
                yield self._load(int(i))
            return
        for start in range(0, self.size, self.batch_size):
            yield self._collate([self._load(int(i))
                                 for i in order[start:start + self.batch_size]])

    def __iter__(self):
        return map(eager_leaves, self._iterate(self.shuffle))

    def element(self, index):
        """Element ``index`` (in the dataset's base order, before any shuffling)."""
        return self._load(int(index))

    def as_arrays(self):
        """Every element in the base order (no shuffling), collated into one batch.

        Returns:
            What one batch of all the elements is: ``(x, y)`` arrays, or ``x`` alone.
        """
        return self._collate([self._load(i) for i in range(self.size)])

    def unbatched(self) -> BatchDataset:
        """The same elements, one at a time."""
        return BatchDataset(self.size, self._load, None, self.shuffle, self.seed,
                            self.class_names, self.file_paths, self._collate)

    def __repr__(self) -> str:
        return (f"<BatchDataset elements={self.size} batch_size={self.batch_size} "
                f"shuffle={self.shuffle}>")


def stack_elements(elements):
    """Stack a list of elements (arrays, or tuples of arrays) into one batch."""
    first = elements[0]
    if isinstance(first, tuple):
        return tuple(stack_elements([e[i] for e in elements]) for i in range(len(first)))
    if isinstance(first, str):
        return np.array(elements)
    return np.stack([np.asarray(e) for e in elements])


def check_validation_split_arg(validation_split, subset, shuffle, seed):
    """Keras's checks of ``validation_split``/``subset``/``shuffle``/``seed``."""
    if validation_split and not 0 < validation_split < 1:
        raise ValueError("`validation_split` must be between 0 and 1, "
                         f"received: validation_split={validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely. "
                         f"Received: validation_split={validation_split}, subset={subset}")
    if subset not in ("training", "validation", "both", None):
        raise ValueError('`subset` must be either "training", "validation" or "both", '
                         f"received: subset={subset}")
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide "
                         "a `seed` argument, to make sure that there is no overlap between the "
                         "training and validation subset.")


def check_labels_arg(labels, label_mode, class_names, kind):
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                f"`labels` argument should be a list/tuple of integer labels, of the same size "
                f"as the number of {kind} files in the target directory. If you wish to infer "
                'the labels from the subdirectory names in the target directory, pass `labels='
                '"inferred"`. If you wish to get a dataset that only contains the files (no '
                f"labels), pass `labels=None`. Received: labels={labels}")
        if class_names:
            raise ValueError('You can only pass `class_names` if `labels="inferred"`. '
                             f"Received: labels={labels}, and class_names={class_names}")
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", '
                         f'"binary", or None. Received: label_mode={label_mode}')


def _valid_files(directory, follow_links, formats):
    walk = os.walk(directory, followlinks=follow_links)
    for root, _, files in sorted(walk, key=lambda entry: entry[0]):
        for fname in sorted(files):
            if fname.lower().endswith(formats):
                yield root, fname


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None,
                    follow_links=False, verbose=True):
    """The files of ``directory`` and their labels, in Keras's order.

    With ``labels="inferred"`` each (non-hidden) subdirectory is a class, in sorted
    order (or ``class_names``' order); files are listed directory by directory, sorted.
    With ``shuffle`` the paths and labels are shuffled by ``np.random.RandomState(seed)``
    exactly as Keras does, so the same seed gives the same file order.

    Returns:
        ``(file_paths, labels, class_names)``; labels an int32 array (inferred), the
        given list, or None.

    Raises:
        ValueError: for ``class_names`` that are not subdirectories, or ``labels`` whose
            length is not the number of files.
    """
    from lamina.utils.file_utils import _print_msg

    directory = os.fspath(directory)
    if labels == "inferred":
        subdirs = [d.rstrip("/") for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names).issubset(set(subdirs)):
                raise ValueError("The `class_names` passed did not match the names of the "
                                 f"subdirectories of the target directory. Expected: {subdirs} "
                                 f"(or a subset of it), but received: class_names={class_names}")
            subdirs = list(class_names)
    else:
        subdirs = [""]
        if class_names is not None:
            raise ValueError("When `labels=None` (no labels), argument `class_names` cannot be "
                             f"specified. Received: class_names={class_names}" if labels is None
                             else "When argument `labels` is specified, argument `class_names` "
                             "cannot be specified (the `class_names` will be the sorted list of "
                             f"labels). Received: class_names={class_names}")
    class_names = subdirs
    filenames, inferred = [], []
    for index, subdir in enumerate(subdirs):
        dirpath = os.path.join(directory, subdir)
        dirname = os.path.basename(dirpath)
        for root, fname in _valid_files(dirpath, follow_links, formats):
            filenames.append(os.path.join(dirname, os.path.relpath(os.path.join(root, fname),
                                                                   dirpath)))
            inferred.append(index)
    if labels == "inferred":
        labels = np.asarray(inferred, dtype="int32")
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(filenames):
            raise ValueError("Expected the lengths of `labels` to match the number of files in "
                             f"the target directory. len(labels) is {len(labels)} while we "
                             f"found {len(filenames)} files in directory {directory}.")
        class_names = [str(label) for label in sorted(set(labels))]
    if verbose:
        _print_msg(f"Found {len(filenames)} files." if labels is None else
                   f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    file_paths = [os.path.join(directory, fname) for fname in filenames]
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            labels = list(labels) if isinstance(labels, (list, tuple)) else labels
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def training_or_validation_split(samples, labels, validation_split, subset):
    """The training part (all but the last ``validation_split``) or the validation part."""
    from lamina.utils.file_utils import _print_msg

    if not validation_split:
        return samples, labels
    num_val = int(validation_split * len(samples))
    if subset == "training":
        _print_msg(f"Using {len(samples) - num_val} files for training.")
        return samples[:-num_val], None if labels is None else labels[:-num_val]
    if subset == "validation":
        _print_msg(f"Using {num_val} files for validation.")
        return samples[-num_val:], None if labels is None else labels[-num_val:]
    raise ValueError('`subset` must be either "training" or "validation", '
                     f"received: {subset}")


def encode_label(label, label_mode, num_classes):
    """One label as Keras's datasets give it: int32, one-hot float32 or ``(1,)`` float32."""
    if label_mode == "binary":
        return np.asarray([label], dtype="float32")
    if label_mode == "categorical":
        return np.eye(num_classes, dtype="float32")[int(label)]
    return np.asarray(label, dtype="int32")


def _rescale_split_sizes(left_size, right_size, total):
    for name, value in (("left_size", left_size), ("right_size", right_size)):
        if value is not None and type(value) not in (int, float):
            raise TypeError(f"Invalid `{name}` Type. Expected: int or float or None, "
                            f"Received: type({name})={type(value)}.")
    if left_size == 0 and right_size == 0:
        raise ValueError("Both `left_size` and `right_size` are zero. At least one of the "
                         "split sizes must be non-zero.")
    for name, value in (("left_size", left_size), ("right_size", right_size)):
        if (type(value) is int and (value <= 0 or value >= total)) or (
                type(value) is float and (value <= 0 or value >= 1)):
            raise ValueError(f"`{name}` should be either a positive integer smaller than "
                             f"{total}, or a float within the range `[0, 1]`. "
                             f"Received: {name}={value}")
    if type(left_size) is float and type(right_size) is float and left_size + right_size > 1:
        raise ValueError("The sum of `left_size` and `right_size` is greater than 1. It must "
                         "be less than or equal to 1.")
    left = round(left_size * total) if type(left_size) is float else left_size
    right = round(right_size * total) if type(right_size) is float else right_size
    left = total - right if left is None else left
    right = total - left if right is None else right
    if left + right > total:
        raise ValueError(f"The sum of `left_size` and `right_size` should be smaller than the "
                         f"{total}. Received: left_size + right_size = {left + right}and "
                         f"total_length = {total}")
    for value, side in ((left, "left"), (right, "right")):
        if value == 0:
            raise ValueError(f"With `dataset` of length={total}, `left_size`={left} and "
                             f"`right_size`={right}.Resulting {side} side dataset split will be "
                             "empty. Adjust any of the aforementioned parameters")
    return int(left), int(right)


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None,
                  preferred_backend=None):
    """Split a dataset into a left and a right part (``keras.utils.split_dataset``).

    Args:
        dataset: a :class:`BatchDataset`, an array, or a list/tuple of arrays of the same
            length (split along the first axis, element by element).
        left_size: an int (number of elements) or a float in ``(0, 1)`` (fraction, rounded);
            None means the complement of ``right_size``.
        right_size: the same for the right part (taken from the end).
        shuffle: shuffle the elements before splitting (Python's ``random`` seeded with
            ``seed``, the order Keras gets).
        seed: the shuffling seed.
        preferred_backend: accepted for Keras compatibility (Lamina has one kind of
            dataset).

    Returns:
        ``(left, right)``: two :class:`BatchDataset` s, batched as ``dataset`` was.

    Raises:
        TypeError: for another kind of ``dataset`` or non-numeric sizes.
        ValueError: if neither size is given, or a side would be empty.
    """
    del preferred_backend
    if isinstance(dataset, BatchDataset):
        elements = [dataset.element(i) for i in range(dataset.size)]
        batch_size, collate = dataset.batch_size, dataset._collate
        class_names = dataset.class_names
    elif isinstance(dataset, np.ndarray):
        elements, batch_size, collate, class_names = list(dataset), None, None, None
    elif isinstance(dataset, (list, tuple)) and dataset:
        arrays = [np.asarray(a) for a in dataset]
        if len({len(a) for a in arrays}) != 1:
            raise ValueError("The arrays of `dataset` must have the same length. Received "
                             f"lengths: {[len(a) for a in arrays]}")
        elements = [tuple(a[i] for a in arrays) for i in range(len(arrays[0]))]
        batch_size, collate, class_names = None, None, None
    else:
        raise TypeError("The `dataset` argument must be a Lamina dataset, an array or a "
                        f"list/tuple of arrays. Received: dataset={dataset!r} of type "
                        f"{type(dataset)}")
    if left_size is None and right_size is None:
        raise ValueError("At least one of the `left_size` or `right_size` must be specified. "
                         "Received: left_size=None and right_size=None")
    if shuffle:
        if seed is None:
            seed = random.randint(0, int(1e6))
        random.Random(seed).shuffle(elements)
    left, right = _rescale_split_sizes(left_size, right_size, len(elements))
    parts = elements[:left], elements[-right:]
    return tuple(BatchDataset(len(part), part.__getitem__, batch_size,
                              class_names=class_names, collate=collate) for part in parts)


def files_to_datasets(directory, paths, labels, class_names, label_mode, validation_split,
                      subset, batch_size, shuffle, seed, load_file, kind, formats,
                      collate=None):
    """The dataset (or ``[training, validation]`` for ``subset="both"``) of indexed files,
    each element ``load_file(path)`` with its encoded label; the validation part of
    ``"both"`` is not shuffled, as in Keras."""
    num_classes = len(class_names) if class_names else 0
    datasets = []
    for part in (["training", "validation"] if subset == "both" else [subset]):
        part_paths, part_labels = training_or_validation_split(paths, labels,
                                                               validation_split, part)
        if not part_paths:
            what = f"{part} {kind}" if subset == "both" else kind
            raise ValueError(f"No {what} found in directory {directory}. "
                             f"Allowed format{'s' if len(formats) > 1 else ''}: "
                             f"{', '.join(formats)}")

        def load(i, part_paths=part_paths, part_labels=part_labels):
            x = load_file(part_paths[i])
            if label_mode is None:
                return x
            return x, encode_label(part_labels[i], label_mode, num_classes)

        datasets.append(BatchDataset(
            len(part_paths), load, batch_size,
            shuffle and not (subset == "both" and part == "validation"), seed,
            class_names=class_names, file_paths=list(part_paths), collate=collate))
    return datasets if subset == "both" else datasets[0]

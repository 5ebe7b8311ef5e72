"""The ``tf.data.Dataset``-like chaining methods of Lamina's datasets.

Keras's ``*_dataset_from_directory`` functions return ``tf.data.Dataset`` objects, and
scripts written for them chain ``take``/``map``/``cache``/``prefetch`` and call
``.numpy()`` on the batches they iterate. Lamina's :class:`~lamina.utils.dataset_utils.
BatchDataset` takes these methods from :class:`DatasetPipeline`. They run eagerly, in
Python: ``map`` calls its function on each element as it is read, with the element's
arrays (NumPy arrays that also answer ``.numpy()``, see :class:`EagerArray`), so the
function may use Lamina layers and ops, or any library that takes NumPy arrays.
``num_parallel_calls``/``deterministic`` are accepted and elements stay in order;
``prefetch`` keeps the pipeline as it is (no background thread).
"""

from __future__ import annotations

import numpy as np

INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2


class EagerArray(np.ndarray):
    """A NumPy array that also answers ``.numpy()``, as a ``tf.Tensor`` batch does."""

    def numpy(self) -> np.ndarray:
        """The array as a plain ``np.ndarray`` (a view, no copy)."""
        return self.view(np.ndarray)


def eager_leaves(element):
    """``element`` (an array, or a tuple/list/dict of them) with its arrays as
    :class:`EagerArray` views; other leaves are returned as they are."""
    if isinstance(element, np.ndarray):
        return element.view(EagerArray)
    if isinstance(element, tuple):
        return tuple(eager_leaves(e) for e in element)
    if isinstance(element, list):
        return [eager_leaves(e) for e in element]
    if isinstance(element, dict):
        return {k: eager_leaves(v) for k, v in element.items()}
    return element


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < -1:
        raise ValueError(f"`{name}` must be an integer >= -1 (-1 means all elements). "
                         f"Received: {name}={value!r}")
    return int(value)


class DatasetPipeline:
    """Mixin: ``tf.data.Dataset``-style methods over ``iter(self)`` and ``len(self)``.

    Subclasses define ``__iter__`` (one pass over the elements) and ``__len__`` (the
    number of elements a pass yields).
    """

    def cardinality(self) -> int:
        """The number of elements (batches, for a batched dataset) a pass yields."""
        return len(self)

    def take(self, count) -> DerivedDataset:
        """A dataset of at most ``count`` first elements (``-1``: all of them)."""
        count = _check_count("count", count)
        size = len(self) if count == -1 else min(count, len(self))

        def take(source):
            for index, element in enumerate(source):
                if index >= size:
                    return
                yield element

        return DerivedDataset(self, take, size)

    def skip(self, count) -> DerivedDataset:
        """The dataset without its first ``count`` elements (``-1``: all of them)."""
        count = _check_count("count", count)
        skipped = len(self) if count == -1 else min(count, len(self))

        def skip(source):
            for index, element in enumerate(source):
                if index >= skipped:
                    yield element

        return DerivedDataset(self, skip, len(self) - skipped)

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """A dataset of ``map_func`` applied to each element, as ``tf.data`` calls it:
        a tuple element is unpacked into positional arguments, anything else is passed
        as the one argument.

        Args:
            map_func: the function; its result is the new element.
            num_parallel_calls: accepted for compatibility; elements are mapped one at a
                time, in order.
            deterministic: accepted for compatibility (the order is always kept).
            name: accepted for compatibility.

        Returns:
            A :class:`DerivedDataset`.
        """
        if not callable(map_func):
            raise TypeError(f"`map_func` must be callable. Received: map_func={map_func!r}")

        def apply(source):
            for element in source:
                if isinstance(element, tuple):
                    yield map_func(*element)
                else:
                    yield map_func(element)

        return DerivedDataset(self, apply, len(self))

    def cache(self, filename="", name=None) -> DerivedDataset:
        """A dataset that keeps the elements of its first complete pass in memory and
        replays them on later passes (``filename`` other than ``""`` is refused: Lamina
        caches in memory only)."""
        if filename:
            raise ValueError("Lamina datasets cache in memory only; a file cache is not "
                             f"supported. Received: filename={filename!r}")
        return DerivedDataset(self, _MemoryCache(), len(self))

    def prefetch(self, buffer_size, name=None) -> DatasetPipeline:
        """Returns the dataset itself: Lamina reads elements on demand (``buffer_size``
        is checked, as ``tf.data`` checks it: a positive integer or -1 for AUTOTUNE)."""
        if (isinstance(buffer_size, bool) or not isinstance(buffer_size, (int, np.integer))
                or (buffer_size < 0 and buffer_size != -1)):
            raise ValueError("`buffer_size` must be a non-negative integer or -1 "
                             f"(AUTOTUNE). Received: buffer_size={buffer_size!r}")
        return self

    def as_numpy_iterator(self):
        """An iterator over the elements with plain ``np.ndarray`` leaves."""
        for element in self:
            yield _plain(element)


def _plain(element):
    if isinstance(element, tuple):
        return tuple(_plain(e) for e in element)
    if isinstance(element, list):
        return [_plain(e) for e in element]
    if isinstance(element, dict):
        return {k: _plain(v) for k, v in element.items()}
    if hasattr(element, "numpy") and not isinstance(element, np.ndarray):
        return np.asarray(element.numpy())
    return np.asarray(element) if isinstance(element, np.ndarray) else element


class _MemoryCache:
    """The transform of :meth:`DatasetPipeline.cache`: records one complete pass."""

    def __init__(self):
        self.elements = None

    def __call__(self, source):
        if self.elements is not None:
            yield from self.elements
            return
        recorded = []
        for element in source:
            recorded.append(element)
            yield element
        self.elements = recorded


class DerivedDataset(DatasetPipeline):
    """A dataset made from another by a transform of its element stream.

    Args:
        source: the dataset read on each pass.
        transform: ``transform(iterator)`` yields the new elements.
        size: the number of elements a pass yields.
    """

    def __init__(self, source, transform, size):
        self.source = source
        self._transform = transform
        self._size = int(size)
        for attribute in ("class_names", "file_paths"):
            if hasattr(source, attribute):
                setattr(self, attribute, getattr(source, attribute))

    def __iter__(self):
        for element in self._transform(iter(self.source)):
            yield eager_leaves(element)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"<DerivedDataset elements={self._size} from {self.source!r}>"

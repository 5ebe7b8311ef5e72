"""Data that is not an array, into ``fit``/``evaluate``/``predict``: batches as Keras takes them.

Arrays (and lists/dicts of arrays) are sliced by :mod:`lamina.models.data`. Everything
else arrives here, batch by batch:

- a ``keras.utils.PyDataset`` (``Sequence``): batches by index, in order or shuffled by
  batch, prefetched by its workers (:class:`~lamina.utils.py_dataset.OrderedEnqueuer`);
- a Python generator or iterator: consumed as it comes, across epochs;
- any other iterable (an object that iterates like a ``tf.data.Dataset`` or a torch
  ``DataLoader``, a Lamina dataset from ``image_dataset_from_directory``, a list of
  batches): iterated afresh each epoch. Leaves are turned into ndarrays through
  ``__array__``/``.numpy()``, so Lamina never imports tensorflow or torch.

:class:`EpochIterator` hands the training loop ``(step, batch)`` pairs, with Keras's
semantics for ``steps_per_epoch``: when it is set, one pass over the data continues
across epochs; when the data runs out before it, a warning says so and training stops.
"""

from __future__ import annotations

import itertools
import numbers
import warnings

import numpy as np

from lamina.backend.tensor import Tensor
from lamina.models import data as data_utils
from lamina.tree import map_structure
from lamina.utils.py_dataset import OrderedEnqueuer, PyDataset

_RAN_OUT = ("Your input ran out of data; interrupting training. Make sure that your dataset "
            "or generator can generate at least `steps_per_epoch * epochs` batches.")


def is_array_data(x) -> bool:
    """Whether ``x`` is array data (sliced by index) rather than a source of batches."""
    if x is None or isinstance(x, (np.ndarray, Tensor, list, tuple, dict, numbers.Number, str)):
        return True
    if isinstance(x, PyDataset) or hasattr(x, "__next__"):
        return False
    if hasattr(x, "__array__"):
        return True
    return not hasattr(x, "__iter__")


def _to_numpy(leaf):
    if leaf is None or isinstance(leaf, (np.ndarray, Tensor)):
        return leaf
    if hasattr(leaf, "numpy") and callable(leaf.numpy) and not hasattr(leaf, "__array__"):
        leaf = leaf.numpy()
    return np.asarray(leaf)


def standardize_batch(batch, index: int, source: str, class_weight=None):
    """One batch as a ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` tuple of ndarrays.

    Raises:
        ValueError: naming the batch index and what was produced, for any other structure.
    """
    if isinstance(batch, list):
        batch = tuple(batch)
    if isinstance(batch, (dict, np.ndarray, Tensor)) or hasattr(batch, "__array__"):
        batch = (batch,)
    if not isinstance(batch, tuple) or len(batch) not in (1, 2, 3):
        shown = repr(batch)
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        kind = f"a tuple of {len(batch)} entries" if isinstance(batch, tuple) else \
            f"a {type(batch).__name__}"
        raise ValueError(
            f"Batch {index} of the {source} is {kind}: {shown}. Each batch must be `x`, "
            "`(x,)`, `(x, y)` or `(x, y, sample_weight)` (a dict `x` maps input names to "
            "arrays).")
    batch = map_structure(_to_numpy, batch)
    if class_weight is not None and len(batch) >= 2:
        if len(batch) == 3 and batch[2] is not None:
            raise ValueError("You cannot specify `class_weight` and `sample_weight` at the "
                             "same time.")
        batch = (batch[0], batch[1],
                 data_utils.class_weight_to_sample_weight(batch[1], class_weight))
    return batch


class ArrayAdapter:
    """Arrays sliced into batches (in order, shuffled, or shuffled by batch).

    ``part``, when set (a data-parallel replica sets it for its epochs), maps a batch's
    row count ``n`` to the ``(lo, hi)`` rows of it this process trains on, and only
    those rows are gathered; :attr:`batch_rows` is then the whole batch's row count.
    """

    def __init__(self, x, y, sample_weight, n, batch_size, shuffle=False, rng=None, steps=None):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self._batches = data_utils.BatchIterator(n, batch_size, shuffle, rng, steps)
        self.num_batches = self._batches.num_batches
        self.part = None
        self.batch_rows = 0  # rows of the last batch handed out, before `part`

    def passes(self):
        for index in self._batches.epoch():
            index, self.batch_rows = _rows_of(index, self.part)
            yield data_utils.pack_x_y_sample_weight(
                data_utils.take(self.x, index), data_utils.take(self.y, index),
                data_utils.take(self.sample_weight, index))

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass


def _rows_of(index, part):
    """``(rows to gather, the batch's row count)`` for a batch's ``index`` (an int array
    or a slice), all of them or ``part(n)``'s ``(lo, hi)`` of them."""
    n = index.stop - index.start if isinstance(index, slice) else len(index)
    if part is None:
        return index, n
    lo, hi = part(n)
    if isinstance(index, slice):
        return slice(index.start + lo, index.start + hi), n
    return index[lo:hi], n


class PyDatasetAdapter:
    """A ``PyDataset``: each pass reads every index (shuffled when asked), prefetched."""

    def __init__(self, dataset, shuffle=False, rng=None, class_weight=None):
        self.dataset, self.shuffle, self.rng = dataset, shuffle, rng
        self.class_weight = class_weight
        self.num_batches = dataset.num_batches
        if self.num_batches is not None and (
                not isinstance(self.num_batches, (int, np.integer)) or self.num_batches < 0):
            raise ValueError(f"{type(dataset).__name__}.num_batches must be a non-negative "
                             f"integer or None. Received: {self.num_batches!r}")

    def passes(self):
        n = self.num_batches
        if n is None:
            indices = itertools.count()
        elif self.shuffle:
            indices = [int(i) for i in self.rng.permutation(n)]
        else:
            indices = range(n)
        ds = self.dataset
        if ds.workers > 1 or (ds.workers > 0 and ds.use_multiprocessing):
            enqueuer = OrderedEnqueuer(ds, ds.workers, ds.use_multiprocessing, ds.max_queue_size)
            batches = enqueuer.get(indices)
        else:
            batches = (ds[i] for i in indices)
        try:
            for step, batch in enumerate(batches):
                yield standardize_batch(batch, step, type(ds).__name__, self.class_weight)
        finally:
            if hasattr(batches, "close"):
                batches.close()

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


class IterableAdapter:
    """A generator/iterator (one stream for all epochs) or an iterable (a pass per epoch)."""

    def __init__(self, source, class_weight=None):
        self.source, self.class_weight = source, class_weight
        self.num_batches = None
        if not hasattr(source, "__next__"):
            try:
                self.num_batches = len(source)
            except TypeError:
                self.num_batches = None
        self._name = ("generator" if hasattr(source, "__next__")
                      else f"{type(source).__name__} dataset")

    def passes(self):
        for step, batch in enumerate(iter(self.source)):
            yield standardize_batch(batch, step, self._name, self.class_weight)

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass


def get_adapter(x, shuffle=False, class_weight=None, rng=None, what="x"):
    """The adapter for non-array data ``x``.

    Raises:
        ValueError: for data that is neither arrays nor a source of batches.
    """
    if isinstance(x, PyDataset):
        return PyDatasetAdapter(x, shuffle=bool(shuffle), rng=rng, class_weight=class_weight)
    if hasattr(x, "__iter__") or hasattr(x, "__next__"):
        return IterableAdapter(x, class_weight=class_weight)
    raise ValueError(f"Unrecognized data type: {what}={x!r} (of type {type(x).__name__}). "
                     "Expected arrays, a PyDataset, a generator or an iterable of batches.")


class EpochIterator:
    """``(step, batch)`` pairs for each epoch, with Keras's ``steps_per_epoch`` semantics.

    Args:
        adapter: an adapter (``passes()``, ``num_batches``, ``on_epoch_begin/end``).
        steps_per_epoch: batches per epoch; ``None`` means one full pass.
    """

    def __init__(self, adapter, steps_per_epoch=None):
        if steps_per_epoch is not None and (
                isinstance(steps_per_epoch, bool)
                or not isinstance(steps_per_epoch, (int, np.integer)) or steps_per_epoch <= 0):
            raise ValueError(f"`steps_per_epoch` must be a positive integer or None. "
                             f"Received: steps_per_epoch={steps_per_epoch!r}")
        self.adapter = adapter
        self.steps_per_epoch = None if steps_per_epoch is None else int(steps_per_epoch)
        self._num_batches = adapter.num_batches
        self._current = None
        self.exhausted = False

    @property
    def num_batches(self):
        """Batches per epoch (for the progress bar), ``None`` while unknown."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        return self._num_batches

    def epoch(self):
        """Yield ``(step, batch)`` for one epoch.

        Sets ``exhausted`` when an epoch gets no batch at all (a spent generator): the
        training loop stops there. Running out part-way through an epoch that
        ``steps_per_epoch`` asked more of warns, as Keras does, and ends that epoch.
        """
        self.adapter.on_epoch_begin()
        steps, ran_out = 0, False
        try:
            if self.steps_per_epoch is None:
                self.close()
                for steps, batch in enumerate(self.adapter.passes(), start=1):
                    yield steps - 1, batch
                if self._num_batches is None:
                    self._num_batches = steps
            else:
                if self._current is None:
                    self._current, self._seen = self.adapter.passes(), 0
                for step in range(self.steps_per_epoch):
                    if self._num_batches and self._seen >= self._num_batches:
                        ran_out = True
                        break
                    try:
                        batch = next(self._current)
                    except StopIteration:
                        self._num_batches = self._num_batches or self._seen
                        self._current = None
                        ran_out = True
                        break
                    self._seen += 1
                    steps += 1
                    yield step, batch
                if self._num_batches and self._seen >= self._num_batches:
                    self.close()
            self.exhausted = steps == 0
            if ran_out or self.exhausted:
                warnings.warn(_RAN_OUT, stacklevel=2)
        finally:
            self.adapter.on_epoch_end()

    def close(self):
        """Stop a pass in progress (its prefetching workers with it)."""
        current, self._current = self._current, None
        if current is not None:
            current.close()

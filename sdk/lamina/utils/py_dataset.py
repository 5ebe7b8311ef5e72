"""``keras.utils.PyDataset``: batches by index, optionally prefetched by workers.

A ``PyDataset`` subclass implements ``__getitem__(index)`` (one batch: ``x``,
``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``) and ``__len__`` (or the
``num_batches`` property; ``None`` for an infinite dataset). ``fit``, ``evaluate`` and
``predict`` take it as ``x``. With ``workers > 1`` (threads) or
``use_multiprocessing=True`` (processes), an :class:`OrderedEnqueuer` computes up to
``max_queue_size`` batches ahead while the model trains, and hands them over in
index order, so the result does not depend on the number of workers.

Example:
    >>> import numpy as np
    >>> class Squares(PyDataset):
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, i):
    ...         x = np.full((2, 1), i, dtype="float32")
    ...         return x, x ** 2
    >>> [float(b[1][0, 0]) for b in Squares(workers=2)]
    [0.0, 1.0, 4.0]
"""

from __future__ import annotations

import collections
import itertools
import os

_PROCESS_DATASET = None  # the dataset of a worker process (set by its initializer)


class PyDataset:
    """Base class for datasets that produce batches by index (``keras.utils.PyDataset``).

    Args:
        workers: number of threads (or processes) computing batches ahead. ``1`` with
            ``use_multiprocessing=False`` computes each batch when it is needed.
        use_multiprocessing: compute batches in worker processes instead of threads
            (for pure-Python batch code that holds the GIL). The dataset is handed to
            the processes when they start (fork), so it must not hold open files or locks.
        max_queue_size: at most this many batches are computed ahead.

    Raises:
        ValueError: for a non-positive ``max_queue_size`` or a negative ``workers``.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"`workers` must be a non-negative integer. Received: "
                             f"workers={workers!r}")
        if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int) \
                or max_queue_size < 1:
            raise ValueError(f"`max_queue_size` must be a positive integer. Received: "
                             f"max_queue_size={max_queue_size!r}")
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    # Subclasses that forget `super().__init__(**kwargs)` still work, as in Keras.
    @property
    def workers(self):
        return getattr(self, "_workers", 1)

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        return getattr(self, "_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        return getattr(self, "_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        """The batch at position ``index``."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__.")

    @property
    def num_batches(self):
        """The number of batches, or ``None`` for an infinite dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(
            f"{type(self).__name__} must implement `__len__` or the `num_batches` property "
            "(return None for an infinite dataset).")

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch (for example to reshuffle)."""

    def __iter__(self):
        n = self.num_batches
        for index in (range(n) if n is not None else itertools.count()):
            yield self[index]


# Keras 2's name for the same idea; Keras 3 keeps it as an alias.
Sequence = PyDataset


def _process_init(dataset):
    global _PROCESS_DATASET
    _PROCESS_DATASET = dataset


def _process_getitem(index):
    return _PROCESS_DATASET[index]


class OrderedEnqueuer:
    """Computes a ``PyDataset``'s batches ahead on workers and yields them in order.

    Args:
        dataset: the ``PyDataset``.
        workers: threads or processes.
        use_multiprocessing: processes (forked) instead of threads.
        max_queue_size: batches computed ahead at most.

    Example:
        >>> enqueuer = OrderedEnqueuer(dataset, workers=2)  # doctest: +SKIP
        >>> for batch in enqueuer.get(range(len(dataset))):  # doctest: +SKIP
        ...     ...
    """

    def __init__(self, dataset, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.dataset = dataset
        self.workers = max(1, int(workers))
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max(1, int(max_queue_size))
        self._executor = None

    def start(self):
        if self._executor is not None:
            return
        import concurrent.futures  # with multiprocessing: ~1.3 MB, imported when used

        if self.use_multiprocessing:
            import multiprocessing

            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context(method),
                initializer=_process_init, initargs=(self.dataset,))
            self._getitem = _process_getitem
        else:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self.workers, thread_name_prefix=f"lamina-pydataset-{os.getpid()}")
            self._getitem = self.dataset.__getitem__

    def is_running(self) -> bool:
        return self._executor is not None

    def get(self, indices):
        """Yield ``dataset[i]`` for each ``i`` of ``indices``, in order.

        Batches are computed at most ``max_queue_size`` ahead. An exception raised by
        ``__getitem__`` is raised here, at the batch it belongs to. Closing the generator
        (or an exception in the consumer, such as ``KeyboardInterrupt``) stops the workers.
        """
        self.start()
        pending = collections.deque()
        indices = iter(indices)
        try:
            for index in itertools.islice(indices, self.max_queue_size):
                pending.append(self._executor.submit(self._getitem, index))
            while pending:
                batch = pending.popleft().result()
                for index in itertools.islice(indices, 1):
                    pending.append(self._executor.submit(self._getitem, index))
                yield batch
        finally:
            for future in pending:
                future.cancel()
            self.stop()

    def stop(self):
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

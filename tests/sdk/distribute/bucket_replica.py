"""Helpers of the distribute tests: replica functions for
``lamina.distribute.local.launch``, ranks of one shared-memory collective as threads,
and the replicas' weights compared.

They live in their own module (on ``sys.path`` via the tests) because spawned replicas
import their function by name, which pytest's importlib mode does not allow for a test
module.
"""

from __future__ import annotations

from lamina.distribute import get_strategy, local


def fit_and_count(*args, **kwargs) -> dict:
    """``local.fit_replica(*args)`` plus how the replica reduced its gradients."""
    result = local.fit_replica(*args, **kwargs)
    strategy = get_strategy()
    buckets = strategy._buckets
    result["bucket_cap_mb"] = strategy.bucket_cap_mb
    result["buckets"] = 0 if buckets is None else buckets.count
    result["staged"] = bool(buckets is not None and buckets._own is None)
    result["pieces"] = strategy.pieces_applied
    result["shared_steps"] = strategy.shared_steps
    result["merged_steps"] = strategy.merged_steps
    result["landed"] = strategy.landed
    collective = strategy.collective
    result["claimed"] = bool(getattr(collective, "claimed", False))
    result["blocks_taken"] = getattr(collective, "blocks_taken", 0)
    # The collective's sums after fit: the last gradient exchange's, unless the epochs'
    # control exchanges (meta rows only) reduced the vector again.
    result["sums_left"] = float(abs(strategy.collective.result).sum())
    return result


def fit_until_the_chief_stops(model_json: str, compile_kwargs: dict, x, y, fit_kwargs: dict,
                              at_batch: int, abort: bool) -> dict:
    """``fit`` where the chief stops (or aborts) training after batch ``at_batch``.

    Returns:
        ``{"weights", "iterations", "aborted", "buckets"}``: the optimizer's update
        count, and whether ``fit`` raised :class:`~lamina.distribute.Aborted`.
    """
    import numpy as np

    import lamina
    from lamina.callbacks import Callback
    from lamina.distribute import Aborted

    strategy = get_strategy()

    class Stop(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if strategy.is_chief and batch == at_batch:
                if abort:
                    strategy.abort("the test aborts")
                else:
                    self.model.stop_training = True

    lamina.utils.set_random_seed(5)
    model = lamina.models.model_from_json(model_json)
    model.compile(**compile_kwargs)
    aborted = False
    try:
        model.fit(x, y, verbose=0, callbacks=[Stop()], **fit_kwargs)
    except Aborted:
        aborted = True
    buckets = strategy._buckets
    return {"weights": [np.array(w.data) for w in model.weights], "aborted": aborted,
            "iterations": int(np.asarray(model.optimizer.iterations.data)),
            "buckets": 0 if buckets is None else buckets.count}


def fit_with_chief_lr_changes(model_json: str, compile_kwargs: dict, x, y,
                              fit_kwargs: dict) -> dict:
    """``fit`` where the chief halves the learning rate after every batch (the others
    learn it from the exchanges).

    Returns:
        ``{"weights", "pieces"}``: the weights, and how many buckets' updates
        overlapped the exchange (``DataParallel.pieces_applied``).
    """
    import numpy as np

    import lamina
    from lamina.callbacks import Callback

    strategy = get_strategy()

    class Halve(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if strategy.is_chief:
                self.model.optimizer.learning_rate = float(
                    self.model.optimizer.learning_rate) * 0.5

    lamina.utils.set_random_seed(5)
    model = lamina.models.model_from_json(model_json)
    model.compile(**compile_kwargs)
    model.fit(x, y, verbose=0, callbacks=[Halve()], **fit_kwargs)
    return {"weights": [np.array(w.data) for w in model.weights],
            "pieces": strategy.pieces_applied}


def fail_on_rank(failing: int, model_json: str, compile_kwargs: dict, x, y,
                 fit_kwargs: dict) -> dict:
    """``local.fit_replica`` on every rank but ``failing``, which raises before its first
    exchange (its peers must not wait for it)."""
    if get_strategy().rank == failing:
        raise ValueError(f"rank {failing} fails on purpose")
    return local.fit_replica(model_json, compile_kwargs, 5, x, y, fit_kwargs)


class SlowToReport(ValueError):
    """A ValueError that takes a second to pickle: the failing rank's own error then
    reaches the parent after its peer's ``CollectiveAborted``."""

    def __reduce__(self):
        import time

        time.sleep(1.0)
        return (SlowToReport, self.args)


def fail_slowly_on_rank(failing: int, model_json: str, compile_kwargs: dict, x, y,
                        fit_kwargs: dict) -> dict:
    """:func:`fail_on_rank`, with an error that reports after the peer's abort."""
    if get_strategy().rank == failing:
        raise SlowToReport(f"rank {failing} fails on purpose, slowly")
    return local.fit_replica(model_json, compile_kwargs, 5, x, y, fit_kwargs)


def fit_and_count_gathered_rows(*args, **kwargs) -> dict:
    """``local.fit_replica(*args)`` plus the row count of every training batch of ``x``
    this replica gathered from the arrays (``lamina.models.data.take``), and whether the
    adapter's ``part`` was cleared once ``fit`` ended."""
    import numpy as np

    from lamina.models import data, data_adapters

    gathered, adapters = [], []
    original_take, original_init = data.take, data_adapters.ArrayAdapter.__init__

    def take(structure, index):
        rows = original_take(structure, index)
        if type(rows) is np.ndarray and rows.ndim == 2:  # x (y and weights are 1-D)
            gathered.append(len(rows))
        return rows

    def init(self, *a, **k):
        original_init(self, *a, **k)
        adapters.append(self)

    data.take, data_adapters.ArrayAdapter.__init__ = take, init
    try:
        result = local.fit_replica(*args, **kwargs)
    finally:
        data.take, data_adapters.ArrayAdapter.__init__ = original_take, original_init
    result["gathered"] = gathered
    result["parts_left"] = [a.part is not None for a in adapters]
    return result


def run_ranks(path, world: int, body, timeout: float = 30.0):
    """``body(collective, rank)`` on one thread per rank, each on its own
    ``SharedMemoryCollective`` of ``path`` (closed after).

    Returns:
        ``(results by rank, errors)``: the caller asserts there are no errors.
    """
    import threading

    from lamina.distribute import shm

    results, errors = [None] * world, []

    def run(rank):
        collective = None
        try:
            collective = shm.SharedMemoryCollective(path, rank, timeout=timeout)
            results[rank] = body(collective, rank)
        except Exception as exc:  # noqa: BLE001 - the caller asserts there are none
            errors.append(exc)
        finally:
            if collective is not None:
                collective.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


def assert_same_weights(reference, results, single=None) -> None:
    """Every result's ``weights`` are ``reference`` bit for bit; ``single`` (local
    ``fit``'s weights), if given, agrees with them to float32 reduction order."""
    import numpy as np

    for result in results:
        for a, b in zip(reference, result["weights"]):
            assert a.tobytes() == b.tobytes()
    if single is not None:
        for a, b in zip(single, reference):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

"""Run a function as N SPMD replicas in processes of this machine (tests, benchmarks).

:func:`launch` creates the collective (a shared-memory file, or with
``transport="ring"`` a TCP ring whose addresses the ranks report through a queue),
starts ``world`` processes (``spawn``), makes each one's strategy a
:class:`DataParallel` of its rank, calls ``fn(*args)`` and returns every rank's result.
:func:`fit_replica` is the usual ``fn``: it builds a model from its JSON config with a
seed, fits it and returns the weights, so ``launch(fit_replica, 2, ...)`` is a two-replica ``fit``.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import uuid
from pathlib import Path

import numpy as np

from lamina.distribute import ring, shm
from lamina.distribute.strategy import DataParallel, set_strategy

TRANSPORTS = ("shm", "ring")
_RENDEZVOUS: tuple = ()  # a ring worker's (addresses out, address lists in) queues


def _run(fn, collective, args: tuple):
    set_strategy(DataParallel(collective))
    try:
        return fn(*args)
    except BaseException as exc:  # the peers raise instead of waiting for this rank
        collective.abort(f"rank {collective.rank} failed: {exc!r}")
        raise
    finally:
        set_strategy(None)
        collective.close()


def _entry(fn, path: str, rank: int, args: tuple):
    return _run(fn, shm.SharedMemoryCollective(path, rank), args)


def _ring_init(queues) -> None:
    global _RENDEZVOUS
    _RENDEZVOUS = queues


def _ring_entry(fn, rank: int, n: int, m: int, timeout: float, args: tuple):
    endpoint = ring.listen("127.0.0.1")
    found, lists = _RENDEZVOUS
    found.put((rank, endpoint.address))
    try:
        addresses = lists.get(timeout=timeout)
        collective = ring.RingCollective(endpoint, addresses, rank, n, m, timeout=timeout)
    except BaseException:
        endpoint.close()
        raise
    return _run(fn, collective, args)


def _launch_ring(context, fn, world: int, n: int, m: int, timeout: float, args: tuple):
    queues = (context.Queue(), context.Queue())
    try:
        return _rendezvous(context, queues, fn, world, n, m, timeout, args)
    finally:
        for q in queues:
            q.close()
            q.join_thread()


def _rendezvous(context, queues, fn, world: int, n: int, m: int, timeout: float,
                args: tuple):
    with context.Pool(world, initializer=_ring_init, initargs=(queues,)) as pool:
        pending = [pool.apply_async(_ring_entry, (fn, rank, n, m, timeout, args))
                   for rank in range(world)]
        addresses, deadline = {}, time.monotonic() + timeout
        while len(addresses) < world:
            if any(result.ready() for result in pending):
                return _results(pending)  # a rank failed before the rendezvous: raise it
            if time.monotonic() > deadline:
                raise TimeoutError(f"{world - len(addresses)} of {world} ranks did not "
                                   f"report an address within timeout={timeout}")
            try:
                rank, address = queues[0].get(timeout=0.1)
            except queue.Empty:
                continue
            addresses[rank] = address
        for _ in range(world):
            queues[1].put([addresses[rank] for rank in range(world)])
        return _results(pending)


def launch(fn, world: int, *args, n: int, m: int = 64, folder: str = "/dev/shm",
           transport: str = "shm", timeout: float = 600.0) -> list:
    """``[fn(*args) on rank r for r in range(world)]``, each in its own process.

    Args:
        fn: a module-level function (it is pickled by reference).
        world: number of replicas.
        *args: ``fn``'s arguments (the same for every rank).
        n: floats of the collective (at least the model's trainable parameters).
        m: meta floats (at least the metric accumulators + 4).
        folder: where the shared file goes (``"shm"`` only).
        transport: ``"shm"`` (:mod:`lamina.distribute.shm`) or ``"ring"``
            (:mod:`lamina.distribute.ring` over loopback TCP).
        timeout: seconds the ring's set-up and each of its calls may wait
            (``"ring"`` only).

    Raises:
        ValueError: for ``world < 1`` or an unknown ``transport`` (naming it).
    """
    if world < 1:
        raise ValueError(f"world must be >= 1. Received: world={world}")
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}. Received: "
                         f"transport={transport!r}")
    if transport == "ring":
        return _launch_ring(multiprocessing.get_context("spawn"), fn, world, n, m, timeout,
                            args)
    path = shm.create(Path(folder) / f"lamina-local-{uuid.uuid4().hex[:12]}", world, n, m)
    try:
        context = multiprocessing.get_context("spawn")
        with context.Pool(world) as pool:
            return _results([pool.apply_async(_entry, (fn, str(path), rank, args))
                             for rank in range(world)])
    finally:
        shm.remove(path)


def _results(pending: list, grace: float = 5.0) -> list:
    """Every rank's result (``pending``: their ``AsyncResult``s, in rank order).

    Once a rank has failed, the others get ``grace`` seconds to report (a rank's failure
    aborts the collective, so its peers raise ``shm.CollectiveAborted`` at once, and may
    be first to report); then the cause is raised: the first failure by rank that is not
    such a consequence.
    """
    while not all(result.ready() for result in pending):
        if any(result.ready() and not result.successful() for result in pending):
            deadline = time.monotonic() + grace
            for result in pending:
                result.wait(max(0.0, deadline - time.monotonic()))
            break
        next(result for result in pending if not result.ready()).wait(0.05)
    errors = []
    for result in pending:
        if result.ready() and not result.successful():
            try:
                result.get()
            except Exception as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
    if errors:
        raise next((e for e in errors if not isinstance(e, shm.CollectiveAborted)), errors[0])
    return [result.get() for result in pending]


def fit_replica(model_json: str, compile_kwargs: dict, seed: int, x, y, fit_kwargs: dict,
                threads: int | None = None) -> dict:
    """Build ``model_json`` after seeding ``seed``, compile, ``fit(x, y, **fit_kwargs)``.

    Returns:
        ``{"weights": [...], "history": {...}, "epoch_seconds": [...], "rng_state": {...}}``
        (the global generator's state at the end).
    """
    import time

    import lamina
    from lamina.callbacks import Callback

    if threads:
        os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)

    class _Clock(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times: list[float] = []
    lamina.utils.set_random_seed(seed)
    model = lamina.models.model_from_json(model_json)
    model.compile(**compile_kwargs)
    history = model.fit(x, y, verbose=0, callbacks=[_Clock()], **fit_kwargs)
    from lamina.backend.random import get_state

    return {"weights": [np.array(w.data) for w in model.weights],
            "history": dict(history.history), "epoch_seconds": times,
            "rng_state": get_state()}

"""Lamina's threads: a small pool that splits work into fixed parts.

BLAS itself runs on one thread (:mod:`lamina.backend.blas_threads` says why, and holds
the policy). Lamina parallelises itself instead: a large GEMM or elementwise pass is cut
into parts whose boundaries depend only on the shapes (a GEMM's may also follow the
thread count where its parts give the bits of one BLAS call: see
:mod:`lamina.backend.parallel`), and the parts are claimed one by one by the calling
thread and ``cores - 1`` persistent workers
(:func:`~lamina.backend.blas_threads.usable_threads`). Results are therefore
bit-identical whatever the load or the number of workers. When a worker is descheduled
by a neighbour, the caller simply claims the remaining parts itself. Small work is not
split. Under policy ``"off"`` (or without ``threadpoolctl``) everything runs on the
calling thread.

Hand-offs. A job handed to a worker asleep on the queue, and a caller asleep until the
job's last part ends, each cost ~25-35 us on this project's 2-vCPU VMs: a futex wake-up,
then the GIL changing hands, each of which lets an idle vCPU halt. With compiled kernels
(numba) on Linux, and ``LAMINA_POOL_SPIN`` on (the default), a worker that finished a
job waits for the next one spinning instead, and so does a caller for its job's last
part: in a compiled loop without the GIL that gives the core away every turn
(:mod:`lamina.backend.spin_kernels`), for at most ``SPIN_TURNS`` turns (~0.3 ms) before
it sleeps as before. The queue and the job's event stay the only hand-off that counts
(a spin that sees nothing falls back to them), so results and correctness do not depend
on it; only the hand-off's latency does. A worker that stores "job done" from inside its
spin has already let go of the GIL, and one that sees a new job waits ``SPIN_EXTRA``
more turns for the caller to reach its own part's GIL-free call, so neither side finds
the GIL taken and sleeps for it.

Load. A worker that claimed a part and was then descheduled (another process took its
core) makes the caller wait for that part. Workers time their parts (wall clock against
their own CPU clock); when the caller waited over ``STALL_SECONDS`` for a job in which
a worker spent over ``STALL_SECONDS`` off the CPU inside a part, the process runs
solo (every part on the calling thread, in order: the same parts, so the same bits)
for a back-off period that doubles with each stall (``BACKOFF_START`` up to
``BACKOFF_MAX``) and halves for each quiet second. Next to a CPU-bound neighbour the
process thus keeps one core to itself instead of waiting for a descheduled thread.

The pool survives ``fork`` (the child starts its own workers when it first needs them)
and Ctrl-C (the caller stops waiting; a worker finishes its current part and idles).
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
import time

import numpy as np

from lamina.backend import blas_threads, compiled, env

# The policy is the pool's as much as BLAS's: it stays importable from here.
from lamina.backend.blas_threads import get_thread_policy, set_thread_policy  # noqa: F401

STALL_SECONDS = 0.001  # a caller's wait for a worker's part that counts as a stall
BACKOFF_START, BACKOFF_MAX = 0.05, 2.0  # seconds of solo running after a stall
PROBE_EVERY = 31  # every 31st job of a call site runs the other way (pooled <-> solo)
EMA_WEIGHT = 0.25  # of a new timing in a call site's moving averages
SOLO_MARGIN = 0.05  # alone must be this much faster than pooled to run alone
SPIN_TURNS = 500  # a waiting thread's sched_yield turns before it sleeps (~0.3 ms idle)
SPIN_EXTRA = 16  # turns a worker lets the caller reach its part before taking the GIL

_lock = threading.Lock()
_state = {
    "pool": None,
    "solo_until": 0.0,  # monotonic time until which parallel_for runs on the caller only
    "backoff": BACKOFF_START,
    "last_stall": float("-inf"),
    "stalls": 0,
}


def worker_count() -> int:
    """Workers the pool has (or will start) besides the calling thread."""
    return blas_threads.usable_threads() - 1


class _Job:
    """``fn(0) ... fn(n - 1)``, each index claimed once by whichever thread is free.

    numpy's floating-point error handling (``np.errstate``) belongs to each thread; a
    worker runs its parts under the caller's, so that a part warns, raises or stays quiet
    exactly as it would on the calling thread.
    """

    __slots__ = ("fn", "n", "claims", "lock", "remaining", "done", "error", "lost", "errors",
                 "stamp", "ended_on_worker")

    def __init__(self, fn, n):
        self.fn, self.n = fn, n
        self.errors = np.geterr()
        self.claims = itertools.count()  # next() is atomic under the GIL
        self.lock = threading.Lock()
        self.remaining = n
        self.done = threading.Event()
        self.error = None
        self.lost = 0.0  # longest time a worker spent off-CPU inside one of its parts
        self.stamp = 0  # this job's number in its pool's ``posted`` (spinning pools)
        self.ended_on_worker = False  # whether a worker ran the part that ended it

    def work(self, worker=False):
        """Claim and run parts until none is left; a ``worker`` (a pool thread) also times
        them and runs them under the caller's numpy error handling."""
        while True:
            i = next(self.claims)
            if i >= self.n:
                return
            if worker:
                wall, cpu = time.monotonic(), time.thread_time()
            try:
                if worker:
                    with np.errstate(**self.errors):
                        self.fn(i)
                else:
                    self.fn(i)
            except BaseException as exc:  # re-raised by the caller
                if self.error is None:
                    self.error = exc
            if worker:
                lost = (time.monotonic() - wall) - (time.thread_time() - cpu)
                self.lost = max(self.lost, lost)
            with self.lock:
                self.remaining -= 1
                if self.remaining == 0:
                    # Every part ran: a worker that takes this job from the queue later
                    # claims no part, so nothing must keep the closure (and its arrays).
                    self.fn = None
                    self.ended_on_worker = worker
                    self.done.set()


class _Pool:
    def __init__(self, workers: int):
        self.jobs = queue.SimpleQueue()
        self.pid = os.getpid()
        # Spinning pools (see the module docstring): the number of the last job posted,
        # and of the last job a worker ended; spinning threads watch these words.
        self.spin = _spin_kernels()
        self.posted = np.zeros(1, np.int64)
        self.finished = np.zeros(1, np.int64)
        self.caught = 0  # jobs a worker saw posted while it spun (pool_stats)
        self.woken = 0  # jobs a worker took from the queue after its spin saw none
        self.threads = [threading.Thread(target=self._run, name=f"lamina-worker-{i}",
                                         daemon=True) for i in range(workers)]
        for thread in self.threads:
            thread.start()

    def _run(self):
        spin, seen, caught = self.spin, 0, False
        while True:
            job = self.jobs.get()
            if job is None:
                return
            if spin is not None and not caught:
                self.woken += 1
            seen = max(seen, job.stamp)
            job.work(worker=True)
            ended = job.stamp if job.ended_on_worker else 0
            job = None  # idle without holding the job's closure (and the arrays it uses)
            if spin is not None:  # wait for the next job without the GIL, then the queue
                if ended:  # (its caller may be spinning for this)
                    posted = spin.store_then_spin(self.finished, ended, self.posted, seen,
                                                  SPIN_TURNS, SPIN_EXTRA)
                else:
                    posted = spin.spin_while(self.posted, seen, SPIN_TURNS, SPIN_EXTRA)
                caught = posted != seen
                if caught:
                    self.caught += 1
                    seen = posted

    def post(self, job, workers: int) -> None:
        """Queue ``job`` for ``workers`` workers (numbered first when the pool spins)."""
        if self.spin is not None:
            job.stamp = int(self.posted[0]) + 1
        for _ in range(workers):
            self.jobs.put(job)
        if self.spin is not None:
            self.posted[0] = job.stamp  # after the put: a worker that sees it finds the job

    def wait(self, job) -> None:
        """Wait until every part of ``job`` ran (spinning first, when the pool spins)."""
        if self.spin is not None and not job.done.is_set():
            current = int(self.finished[0])
            if current != job.stamp:
                self.spin.spin_while(self.finished, current, SPIN_TURNS, 0)
        job.done.wait()

    def shutdown(self):
        for _ in self.threads:
            self.jobs.put(None)
        self.posted[0] += 1  # spinning workers look at the queue now


def spin_switch() -> bool:
    """``LAMINA_POOL_SPIN`` (default on), read now."""
    return env.flag("LAMINA_POOL_SPIN", True)


def spin_enabled() -> bool:
    """Whether a new pool spins: :func:`spin_switch`, Linux, and compiled kernels
    enabled (:func:`lamina.backend.compiled.enabled`: numba imports, and
    ``LAMINA_KERNELS`` is not ``numpy``)."""
    return spin_switch() and sys.platform.startswith("linux") and compiled.enabled()


def _spin_kernels():
    """:mod:`lamina.backend.spin_kernels` when the pool spins, else None."""
    if not spin_enabled():
        return None
    spin_kernels = _spin_from_library()
    if spin_kernels is None:
        from lamina.backend import spin_kernels
    word = np.zeros(1, np.int64)  # compiled (or loaded from numba's cache) now, not in
    spin_kernels.spin_while(word, 0, 0, 0)  # a job's hand-off, where the time would
    spin_kernels.store_then_spin(word, 0, word, 0, 0, 0)  # count as a worker's stall
    return spin_kernels


#: The spin kernels' names in the ahead-of-time library.
SPIN_KERNELS = ("lamina.backend.spin_kernels.spin_while",
                "lamina.backend.spin_kernels.store_then_spin")


def _spin_from_library():
    """The spin kernels from the ahead-of-time library (:mod:`lamina.backend.aot`), with
    numba's as the fallback for other argument types; None when the library lacks them."""
    import types

    from lamina.backend import aot

    found = {}
    for qualified in SPIN_KERNELS:
        entry = aot.entry(qualified)
        if entry is None:
            return None
        name = qualified.rsplit(".", 1)[1]

        def jit(*args, name=name):
            from lamina.backend import spin_kernels

            return getattr(spin_kernels, name)(*args)

        found[name] = entry.with_fallback(jit)
    return types.SimpleNamespace(**found)


def _shutdown_pool_locked():
    pool, _state["pool"] = _state["pool"], None
    if pool is not None and pool.pid == os.getpid():
        pool.shutdown()


def _pool(workers):
    pool = _state["pool"]
    if pool is None or len(pool.threads) != workers or pool.pid != os.getpid():
        with _lock:
            pool = _state["pool"]
            if pool is None or len(pool.threads) != workers or pool.pid != os.getpid():
                _shutdown_pool_locked()
                pool = _state["pool"] = _Pool(workers)
    return pool


def parallel_for(n: int, fn, site=None) -> None:
    """Run ``fn(i)`` for ``i in range(n)``, spread over the calling thread and the pool.

    Each ``fn(i)`` must write only its own part of the outputs; which thread runs which
    part does not matter, so results do not depend on the load or the worker count.
    Parts are claimed in ascending order and the calling thread claims part 0 first.
    After a stall (see the module docstring) all parts run on the calling thread for a
    while. Exceptions from any part are re-raised here (the first one).

    A call site (``site``, by default ``fn``'s code and ``n``) whose jobs took longer on
    the pool than on the calling thread alone runs them alone (see :func:`_prefer_pool`).
    """
    if n <= 1:  # nothing to share (and no need to ask how many threads there are)
        if n == 1:
            fn(0)
        return
    workers = min(worker_count(), n - 1)
    if workers <= 0 or time.monotonic() < _state["solo_until"]:
        for i in range(n):
            fn(i)
        return
    # (keyed by code, never by fn itself: the table must not keep closures and arrays alive)
    stats = _site_stats((getattr(fn, "__code__", type(fn)), n) if site is None else site)
    start = time.perf_counter()
    if not _prefer_pool(stats):
        for i in range(n):
            fn(i)
        _note_time(stats, 2, time.perf_counter() - start)
        return
    job = _Job(fn, n)
    before = _state["pool"]
    pool = _pool(worker_count())
    pool.post(job, workers)
    job.work()
    mid = time.monotonic()
    pool.wait(job)
    _note_wait(time.monotonic() - mid, job.lost)
    if job.error is not None:
        raise job.error
    if pool is before:  # (a pool's first job also started its threads)
        _note_time(stats, 1, time.perf_counter() - start)


_sites: dict = {}  # call site -> [jobs, pooled seconds, solo seconds] (moving averages)


def _site_stats(key) -> list:
    stats = _sites.get(key)
    if stats is None:
        if len(_sites) >= 4096:  # call sites keyed by shapes: keep the table small
            _sites.clear()
        stats = _sites[key] = [0, None, None]
    stats[0] += 1
    return stats


def _prefer_pool(stats) -> bool:
    """Whether this job of a call site goes to the pool.

    The pool pays when a worker has a core of its own; next to other CPU-bound processes
    its parts often wait for one, and the job can take longer than on the calling thread
    alone (the MLP's first GEMM here: 840 us pooled against 710 us alone at load 3,
    640 us against 690 us at load 0.5). Each call site keeps moving averages of its jobs' times
    both ways: it runs the faster way (alone only when that is ``SOLO_MARGIN`` faster),
    and every ``PROBE_EVERY``-th job the other way, so that it notices when the load
    changes. The parts are the same either way, so are the results.
    """
    pool = _pool_is_faster(stats)
    return (not pool) if stats[0] % PROBE_EVERY == 0 else pool


def _pool_is_faster(stats) -> bool:
    """Whether a call site's jobs are faster pooled (unknown counts as faster), by the
    ``SOLO_MARGIN`` rule; :func:`_prefer_pool` adds the probes."""
    pooled, solo = stats[1], stats[2]
    return pooled is None or solo is None or solo >= (1 - SOLO_MARGIN) * pooled


def _note_time(stats, slot: int, seconds: float) -> None:
    old = stats[slot]
    if old is None:
        stats[slot] = seconds
    else:  # an outlier (a page fault, a descheduled caller) counts at most 2x the average
        stats[slot] = old + EMA_WEIGHT * (min(seconds, 2 * old) - old)


def _note_wait(waited: float, lost: float) -> None:
    """Go solo for a while when the caller waited for a worker that was descheduled (off
    the CPU for over ``STALL_SECONDS`` inside a part) and waited that long for it."""
    if waited <= STALL_SECONDS or lost <= STALL_SECONDS:
        return
    now = time.monotonic()
    quiet = int(min(32.0, now - _state["last_stall"]))
    backoff = max(BACKOFF_START, _state["backoff"] / 2 ** quiet)
    _state["solo_until"] = now + backoff
    _state["backoff"] = min(BACKOFF_MAX, 2 * backoff)
    _state["last_stall"] = now
    _state["stalls"] += 1


def active_threads() -> int:
    """Threads a ``parallel_for`` started now would use: 1 while solo, else workers + 1."""
    if time.monotonic() < _state["solo_until"]:
        return 1
    return worker_count() + 1


def pool_stats() -> dict:
    """How the pool has fared in this process: ``workers``, ``stalls`` (waits for a
    descheduled worker), ``spin`` (whether its hand-offs spin: see the module docstring),
    ``caught_spinning`` (jobs a worker of the current pool saw posted while it spun),
    ``woken_from_queue`` (jobs a worker of a spinning pool took from its queue after
    its spin had seen none),
    ``solo`` (True while parts run on the calling thread only),
    ``solo_sites`` (call sites whose jobs ran faster on the calling thread alone)."""
    pool = _state["pool"]
    return {"workers": worker_count(), "stalls": _state["stalls"],
            "spin": pool is not None and pool.spin is not None,
            "caught_spinning": pool.caught if pool is not None else 0,
            "woken_from_queue": pool.woken if pool is not None else 0,
            "solo": time.monotonic() < _state["solo_until"],
            "solo_sites": sum(1 for stats in _sites.values() if not _pool_is_faster(stats))}


def split(length: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(start, stop)`` ranges covering ``range(length)``."""
    parts = max(1, min(parts, length))
    bounds = [length * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _on_blas_change(policy_set: bool) -> None:
    # (blas_threads.on_change: a new policy also forgets the solo period and the timings)
    if policy_set:
        _state["solo_until"] = 0.0
        _sites.clear()
    with _lock:
        _shutdown_pool_locked()


blas_threads.on_change(_on_blas_change)


def _after_fork_in_child() -> None:
    # The parent's workers do not exist in the child, and a lock may have been held by
    # one of them at fork time: start fresh, lazily.
    global _lock
    _lock = threading.Lock()
    _sites.clear()
    _state["pool"] = None
    _state["solo_until"] = 0.0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

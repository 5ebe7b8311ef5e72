"""Lamina's threads: one-thread BLAS, and a small pool that splits work into fixed parts.

Why not let OpenBLAS use both cores? Its threads spin-wait for each other at the end
of each block. When another CPU-bound process shares the two cores, one BLAS thread is
often descheduled while the other spins for it: measured here, an MLP training step
took 12 ms with one BLAS thread and 110-490 ms with two (the "collapse under load").
OpenBLAS's results also depend on its thread count (a 128x784 @ 784x512 product
differs in the last bits between one and two threads), so any policy that adapts the
BLAS thread count to the load would make seeded runs differ from run to run.

So, by default (policy ``"auto"``), the first Lamina operation in a process sets BLAS
to ONE thread, and Lamina parallelises itself: a large GEMM or elementwise pass is cut
into parts whose boundaries depend only on the shapes (a GEMM's may also follow the
thread count where its parts give the bits of one BLAS call: see
:mod:`lamina.backend.parallel`), and the parts are claimed one by
one by the calling thread and ``cores - 1`` persistent workers (``cores`` = this
process's CPU affinity, capped by the BLAS thread count the user had). Results are
therefore bit-identical whatever the load or the number of workers. When a worker is
descheduled by a neighbour, the caller simply claims the remaining parts itself: no
thread ever spins, and waiting threads sleep. Small work is not split.

This changes no environment variable. It does change the OpenBLAS thread count of the
process, which a user's own numpy code then also sees; ``set_thread_policy("off")``
gives BLAS its previous thread count back, and Lamina then runs everything on the
calling thread and leaves BLAS alone (as does ``LAMINA_THREADS=off`` read at first
use; ``LAMINA_THREADS=1`` keeps one-thread BLAS without workers). Without
``threadpoolctl`` BLAS is left alone and the pool stays off too, to avoid running
two-thread BLAS inside two pool threads.

Load. A worker that claimed a part and was then descheduled (another process took its
core) makes the caller wait for that part. Workers time their parts (wall clock against
their own CPU clock); when the caller waited over ``STALL_SECONDS`` for a job in which
a worker spent over ``STALL_SECONDS`` off the CPU inside a part, the process runs
solo (every part on the calling thread, in order: the same parts, so the same bits)
for a back-off period that doubles with each stall (``BACKOFF_START`` up to
``BACKOFF_MAX``) and halves for each quiet second. Next to a CPU-bound neighbour the
process thus keeps one core to itself instead of waiting for a descheduled thread.

Other BLAS libraries. numba's ``np.dot`` (the LSTM and attention kernels) calls scipy's
OpenBLAS, a library apart from numpy's that the policy above does not set. Code that
runs such products (or small per-step GEMMs) inside its own parallelism enters
:func:`one_blas_thread`: while any thread is inside it, every other BLAS library is on
one thread; the last thread to leave gives each its previous count back. It does
nothing under policy ``"off"`` or without ``threadpoolctl``, and changes nothing
process-wide beyond the block.

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

CHECK_SECONDS = 0.5  # how often tick() checks the BLAS thread count and the CPU affinity
STALL_SECONDS = 0.001  # a caller's wait for a worker's part that counts as a stall
BACKOFF_START, BACKOFF_MAX = 0.05, 2.0  # seconds of solo running after a stall
PROBE_EVERY = 31  # every 31st job of a call site runs the other way (pooled <-> solo)
EMA_WEIGHT = 0.25  # of a new timing in a call site's moving averages
SOLO_MARGIN = 0.05  # alone must be this much faster than pooled to run alone

_lock = threading.Lock()
_state = {
    "policy": None,  # "auto", "off" or an int (max threads); None until first use
    "controller": None,  # threadpoolctl's OpenBLAS controller, or False if unavailable
    "ceiling": None,  # the BLAS thread count before Lamina set it to one
    "pool": None,
    "next": 0.0,
    "cores": None,  # CPU affinity, re-read by tick() every CHECK_SECONDS
    "solo_until": 0.0,  # monotonic time until which parallel_for runs on the caller only
    "backoff": BACKOFF_START,
    "last_stall": float("-inf"),
    "stalls": 0,
}


def _controller():
    ctl = _state["controller"]
    if ctl is None:
        ctl = False
        try:
            import numpy  # noqa: F401  (loads the BLAS that threadpoolctl looks for)
            from threadpoolctl import ThreadpoolController

            found = ThreadpoolController().select(internal_api="openblas").lib_controllers
            ctl = _numpys(found) if found else False
        except Exception:  # threadpoolctl absent or unable to inspect this process
            ctl = False
        _state["controller"] = ctl
    return ctl


def _numpys(controllers):
    """numpy's OpenBLAS among several (scipy's wheel brings its own; threadpoolctl lists
    them in an order that varies from process to process): the one in numpy's wheel
    (``numpy.libs``, ``numpy/.dylibs``), else one outside scipy's, else the first."""
    def wheel(ctl):  # "numpy" for .../numpy.libs/lib.so and .../numpy/.dylibs/lib.dylib
        parent, folder = ["", "", *os.path.normpath(ctl.filepath).split(os.sep)][-3:-1]
        return folder[:-len(".libs")] if folder.endswith(".libs") else (
            parent if folder == ".dylibs" else None)

    for wanted in (lambda w: w == "numpy", lambda w: w != "scipy"):
        for ctl in controllers:
            if wanted(wheel(ctl)):
                return ctl
    return controllers[0]


def _set_threads(ctl, count) -> None:
    # threadpoolctl >= 3.8 lets only the first thread that set an OpenBLAS's count set it
    # again and silently ignores the others; Lamina sets counts from whichever thread
    # opens or closes a block (its own locks order the changes), so it calls the setter
    # behind that check (set_num_threads for the other libraries and older versions).
    getattr(ctl, "_real_set_num_threads", ctl.set_num_threads)(count)


def _check_policy(policy, name):
    if policy in ("auto", "off") or (isinstance(policy, int) and not isinstance(policy, bool)
                                     and policy > 0):
        return policy
    raise ValueError(f"{name} must be 'auto', 'off' or a positive integer. "
                     f"Received: {name}={policy!r}")


def _env_policy():
    raw = os.environ.get("LAMINA_THREADS", "auto").strip().lower() or "auto"
    return _check_policy(int(raw) if raw.isdigit() else raw, "LAMINA_THREADS")


def get_thread_policy():
    """The current policy: ``"auto"``, ``"off"`` or a maximum thread count."""
    if _state["policy"] is None:
        _state["policy"] = _env_policy()
    return _state["policy"]


def set_thread_policy(policy) -> None:
    """Choose how Lamina uses threads.

    Args:
        policy: ``"auto"`` (default: one-thread BLAS, plus workers up to the cores this
            process may use, capped by the BLAS thread count it had), ``"off"`` (give
            BLAS its thread count back, run on the calling thread only) or a positive
            integer (one-thread BLAS and at most that many threads, the caller included).

    Raises:
        ValueError: on any other value.
    """
    policy = _check_policy(policy, "policy")
    with _lock:
        _state["policy"] = policy
        _state["next"] = 0.0
        _state["solo_until"] = 0.0
        _sites.clear()
        if policy == "off":
            ctl = _controller()
            if ctl and _state["ceiling"] is not None:
                _set_threads(ctl, _state["ceiling"])
            _state["ceiling"] = None
        _shutdown_pool_locked()


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def tick(now: float | None = None) -> None:
    """Make sure BLAS runs on one thread (cheap: one clock read most of the time).

    The engine calls this on every primitive. When somebody else (the user's
    ``threadpool_limits``) set another BLAS thread count since, that count becomes the
    new cap of the pool and BLAS is set back to one thread.
    """
    now = time.monotonic() if now is None else now
    if now < _state["next"]:
        return
    with _lock:
        if now < _state["next"]:
            return
        _state["next"] = now + CHECK_SECONDS
        _state["cores"] = _available_cores()
        if get_thread_policy() == "off":
            return
        ctl = _controller()
        if not ctl:
            _state["next"] = float("inf")
            return
        current = ctl.get_num_threads()
        if current != 1 or _state["ceiling"] is None:
            if _state["ceiling"] != current:
                _shutdown_pool_locked()
            _state["ceiling"] = current
            if current != 1:
                _set_threads(ctl, 1)


def blas_is_single_threaded() -> bool:
    """True when this module runs BLAS on one thread (policy not ``"off"``)."""
    tick()
    return (get_thread_policy() != "off" and bool(_controller())
            and _state["ceiling"] is not None)


_blas_lock = threading.Lock()
_blas = {
    "others": None,  # controllers of the BLAS libraries besides numpy's
    "scanned_scipy": None,  # whether scipy.linalg was loaded when "others" was found
    "depth": 0,  # one_blas_thread blocks open, over all threads
    "held": [],  # (controller, count before) of the libraries the blocks set to one
    "generation": 0,  # bumped in a forked child: blocks entered before do not count
}


def _other_blas() -> list:
    """threadpoolctl's controllers of every BLAS library but the one :func:`tick` holds
    (scipy's OpenBLAS, which numba's ``np.dot`` calls, once ``scipy.linalg`` loaded it)."""
    scipy_loaded = "scipy.linalg" in sys.modules
    if _blas["others"] is None or _blas["scanned_scipy"] != scipy_loaded:
        ours = _controller()
        try:
            from threadpoolctl import ThreadpoolController

            found = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # threadpoolctl unable to inspect this process
            found = []
        _blas["others"] = [ctl for ctl in found if ctl.filepath != ours.filepath]
        _blas["scanned_scipy"] = scipy_loaded
    return _blas["others"]


class _OneBlasThread:
    __slots__ = ("generation",)

    def __enter__(self):
        self.generation = None
        if not blas_is_single_threaded():  # policy "off", or no threadpoolctl/OpenBLAS
            return self
        with _blas_lock:
            if _blas["depth"] == 0:
                if _controller().get_num_threads() != 1:
                    # (the user's threadpool_limits since the last tick: hold it now)
                    _state["next"] = 0.0
                    tick()
                held = []
                for ctl in _other_blas():
                    count = ctl.get_num_threads()
                    if count != 1:
                        _set_threads(ctl, 1)
                        held.append((ctl, count))
                _blas["held"] = held
            _blas["depth"] += 1
            self.generation = _blas["generation"]
        return self

    def __exit__(self, *exc_info):
        if self.generation is None:
            return False
        with _blas_lock:
            if self.generation == _blas["generation"]:
                _blas["depth"] -= 1
                if _blas["depth"] == 0:
                    _give_blas_back_locked()
        return False


def _give_blas_back_locked():
    held, _blas["held"] = _blas["held"], []
    for ctl, count in held:
        _set_threads(ctl, count)


def one_blas_thread():
    """A context manager: every BLAS library runs on one thread inside the block.

    For code that runs BLAS inside Lamina's own parallelism (the per-step GEMMs of the
    recurrences, numba's ``np.dot`` in the LSTM and attention kernels): two pool threads
    each running two-thread products would oversubscribe the cores, and OpenBLAS's
    results depend on its thread count. numpy's OpenBLAS is held at one thread by the
    thread policy already (:func:`tick`); this sets the others (scipy's, which numba
    calls, once loaded) to one thread when the first block of any thread opens, and
    gives each its count from then back when the last block closes, so blocks nest and
    may overlap across threads. A count set by someone else while a block is open is
    overwritten at that point. Under policy ``"off"`` or without ``threadpoolctl`` it
    does nothing. It never changes an environment variable.

    Entering and leaving cost ~5 us for the first block (a lock, reading and setting
    scipy's count there and back), ~1 us nested, ~0.5 us under ``"off"``.
    """
    return _OneBlasThread()


def worker_count() -> int:
    """Workers the pool has (or will start) besides the calling thread."""
    tick()
    policy = get_thread_policy()
    if policy == "off" or not _controller() or _state["ceiling"] is None:
        return 0
    threads = min(_state["cores"] or _available_cores(), _state["ceiling"])
    if isinstance(policy, int):
        threads = min(threads, policy)
    return max(0, threads - 1)


class _Job:
    """``fn(0) ... fn(n - 1)``, each index claimed once by whichever thread is free."""

    __slots__ = ("fn", "n", "claims", "lock", "remaining", "done", "error", "lost")

    def __init__(self, fn, n):
        self.fn, self.n = fn, n
        self.claims = itertools.count()  # next() is atomic under the GIL
        self.lock = threading.Lock()
        self.remaining = n
        self.done = threading.Event()
        self.error = None
        self.lost = 0.0  # longest time a worker spent off-CPU inside one of its parts

    def work(self, timed=False):
        while True:
            i = next(self.claims)
            if i >= self.n:
                return
            if timed:
                wall, cpu = time.monotonic(), time.thread_time()
            try:
                self.fn(i)
            except BaseException as exc:  # re-raised by the caller
                if self.error is None:
                    self.error = exc
            if timed:
                lost = (time.monotonic() - wall) - (time.thread_time() - cpu)
                self.lost = max(self.lost, lost)
            with self.lock:
                self.remaining -= 1
                if self.remaining == 0:
                    # Every part ran: a worker that takes this job from the queue later
                    # claims no part, so nothing must keep the closure (and its arrays).
                    self.fn = None
                    self.done.set()


class _Pool:
    def __init__(self, workers: int):
        self.jobs = queue.SimpleQueue()
        self.pid = os.getpid()
        self.threads = [threading.Thread(target=self._run, name=f"lamina-worker-{i}",
                                         daemon=True) for i in range(workers)]
        for thread in self.threads:
            thread.start()

    def _run(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job.work(timed=True)
            job = None  # idle without holding the job's closure (and the arrays it uses)

    def shutdown(self):
        for _ in self.threads:
            self.jobs.put(None)


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
    for _ in range(workers):
        pool.jobs.put(job)
    job.work()
    mid = time.monotonic()
    job.done.wait()
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
    descheduled worker), ``solo`` (True while parts run on the calling thread only),
    ``solo_sites`` (call sites whose jobs ran faster on the calling thread alone)."""
    return {"workers": worker_count(), "stalls": _state["stalls"],
            "solo": time.monotonic() < _state["solo_until"],
            "solo_sites": sum(1 for stats in _sites.values() if not _pool_is_faster(stats))}


def split(length: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(start, stop)`` ranges covering ``range(length)``."""
    parts = max(1, min(parts, length))
    bounds = [length * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _after_fork_in_child() -> None:
    # The parent's workers do not exist in the child, and a lock may have been held by
    # one of them at fork time: start fresh, lazily.
    global _lock
    _lock = threading.Lock()
    _sites.clear()
    _state["pool"] = None
    _state["next"] = 0.0
    _state["solo_until"] = 0.0
    # Blocks open in the parent's other threads never close here: give BLAS back now.
    global _blas_lock
    _blas_lock = threading.Lock()
    _blas["generation"] += 1
    _blas["depth"] = 0
    _give_blas_back_locked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

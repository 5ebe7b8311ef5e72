"""Lamina's BLAS threads: one-thread BLAS, numpy's and every other BLAS library's.

Why not let OpenBLAS use both cores? Its threads spin-wait for each other at the end
of each block. When another CPU-bound process shares the two cores, one BLAS thread is
often descheduled while the other spins for it: measured here, an MLP training step
took 12 ms with one BLAS thread and 110-490 ms with two (the "collapse under load").
OpenBLAS's results also depend on its thread count (a 128x784 @ 784x512 product
differs in the last bits between one and two threads), so any policy that adapts the
BLAS thread count to the load would make seeded runs differ from run to run.

So, by default (policy ``"auto"``), the first Lamina operation in a process sets BLAS
to ONE thread, and Lamina parallelises itself: it cuts large work into fixed parts that
the calling thread and a small pool of workers claim (:mod:`lamina.backend.threads`),
with ``cores - 1`` workers (``cores`` = this process's CPU affinity, capped by the BLAS
thread count the user had, or the lower one the environment asks for when Lamina first
runs: :func:`usable_threads`, :func:`environment_threads`).

This changes no environment variable. It does change the OpenBLAS thread count of the
process, which a user's own numpy code then also sees; ``set_thread_policy("off")``
gives BLAS its previous thread count back, and Lamina then runs everything on the
calling thread and leaves BLAS alone (as does ``LAMINA_THREADS=off`` read at first
use; ``LAMINA_THREADS=1`` keeps one-thread BLAS without workers). Without
``threadpoolctl`` BLAS is left alone and the pool stays off too, to avoid running
two-thread BLAS inside two pool threads.

Other BLAS libraries. numba's ``np.dot`` (the LSTM and attention kernels) calls scipy's
OpenBLAS, a library apart from numpy's that the policy above does not set. Code that
runs such products (or small per-step GEMMs) inside its own parallelism enters
:func:`one_blas_thread`: while any thread is inside it, every other BLAS library is on
one thread; the last thread to leave gives each its previous count back. It does
nothing under policy ``"off"`` or without ``threadpoolctl``, and changes nothing
process-wide beyond the block.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from lamina.backend import env

CHECK_SECONDS = 0.5  # how often tick() checks the BLAS thread count and the CPU affinity

_lock = threading.Lock()
_state = {
    "policy": None,  # "auto", "off" or an int (max threads); None until first use
    "controller": None,  # threadpoolctl's OpenBLAS controller, or False if unavailable
    "ceiling": None,  # the BLAS thread count before Lamina set it to one
    "next": 0.0,
    "cores": None,  # CPU affinity, re-read by tick() every CHECK_SECONDS
}
# Called under _lock as listener(policy_set): when the policy is set (True) or the BLAS
# thread count that caps Lamina's threads changed (False). See on_change.
_listeners: list = []


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
    return env.choice("LAMINA_THREADS", ("auto", "off"), "auto", positive_int=True)


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
        if policy == "off":
            ctl = _controller()
            if ctl and _state["ceiling"] is not None:
                _set_threads(ctl, _state["ceiling"])
            _state["ceiling"] = None
        for listener in _listeners:
            listener(True)


#: The variables OpenBLAS reads its thread count from when it loads, in its order of
#: precedence (the first one holding a positive count wins).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def environment_threads() -> int | None:
    """The BLAS thread count the environment asks for now, or None.

    OpenBLAS reads it once, when it loads. A process may set it later: Ray sets
    ``OMP_NUM_THREADS`` to an actor's CPUs in a worker process that may have imported
    numpy already (OpenBLAS then took a thread per core). Lamina's first use caps its
    threads at this count too (:func:`tick`).
    """
    for name in BLAS_THREAD_VARIABLES:
        try:
            count = int(os.environ.get(name, "").strip())
        except ValueError:
            continue
        if count > 0:
            return count
    return None


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def tick(now: float | None = None) -> None:
    """Make sure BLAS runs on one thread (cheap: one clock read most of the time).

    The engine calls this on every primitive. At first use, the BLAS thread count
    (capped by :func:`environment_threads`) becomes the cap of the pool. When somebody
    else (the user's ``threadpool_limits``) set another BLAS thread count since, that
    count becomes the new cap and BLAS is set back to one thread.
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
            ceiling = current
            if _state["ceiling"] is None:  # first use: the environment's count, if lower
                ceiling = min(current, environment_threads() or current)
            if _state["ceiling"] != ceiling:
                for listener in _listeners:
                    listener(False)
            _state["ceiling"] = ceiling
            if current != 1:
                _set_threads(ctl, 1)


def blas_is_single_threaded() -> bool:
    """True when this module runs BLAS on one thread (policy not ``"off"``)."""
    tick()
    return (get_thread_policy() != "off" and bool(_controller())
            and _state["ceiling"] is not None)


def usable_threads() -> int:
    """Threads Lamina may keep busy, the calling thread included: this process's cores
    (its CPU affinity), capped by the BLAS thread count it had and by an integer policy;
    1 while BLAS is not held at one thread (policy ``"off"``, no ``threadpoolctl``)."""
    tick()
    policy = get_thread_policy()
    if policy == "off" or not _controller() or _state["ceiling"] is None:
        return 1
    threads = min(_state["cores"] or _available_cores(), _state["ceiling"])
    if isinstance(policy, int):
        threads = min(threads, policy)
    return threads


def on_change(listener) -> None:
    """Call ``listener(policy_set)`` under this module's lock whenever the policy is set
    (``True``) or the BLAS thread count that caps :func:`usable_threads` changes
    (``False``): the pool (:mod:`lamina.backend.threads`) then restarts its workers."""
    _listeners.append(listener)


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


#: OpenBLAS's kernel sets (threadpoolctl's ``architecture``) whose SGEMM uses AVX-512.
AVX512_CORES = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})


def describe_blas() -> dict:
    """numpy's BLAS as this process runs it, for logs and benchmark headers.

    OpenBLAS picks its kernels once, when numpy loads it: by the CPU, unless the
    ``OPENBLAS_CORETYPE`` environment variable names a core type. A machine that sets
    it to an AVX2 core (``Haswell``, ``Zen``) on a CPU with AVX-512 holds every matrix
    product to AVX2 kernels: on a Zen 5 core, 124 against 220 GFLOP/s for float32
    (docs/architecture.md). Only the process's environment can change that; Lamina
    never changes it, and says so here instead.

    Returns:
        ``{"library", "version", "core", "coretype_env", "cpu_avx512", "note"}``:
        ``library`` is ``"openblas"`` (None without threadpoolctl or an OpenBLAS),
        ``core`` OpenBLAS's kernel set (``"Haswell"``, ``"SkylakeX"``, ...),
        ``coretype_env`` the variable's value (None when unset), ``cpu_avx512`` whether
        the CPU has AVX-512F (None where ``/proc/cpuinfo`` is not there), ``note`` one
        sentence when the variable holds OpenBLAS below the CPU (else None).
    """
    ctl = _controller()
    info = ctl.info() if ctl else {}
    report = {"library": info.get("internal_api"), "version": info.get("version"),
              "core": info.get("architecture"),
              "coretype_env": os.environ.get("OPENBLAS_CORETYPE") or None,
              "cpu_avx512": _cpu_has("avx512f")}
    report["note"] = coretype_note(report["core"], report["coretype_env"],
                                   report["cpu_avx512"])
    return report


def coretype_note(core, coretype_env, cpu_avx512) -> str | None:
    """The sentence :func:`describe_blas` gives when ``OPENBLAS_CORETYPE`` (``coretype_env``)
    holds OpenBLAS to a kernel set ``core`` without AVX-512 on a CPU with it; else None."""
    if not coretype_env or not cpu_avx512 or core is None or core in AVX512_CORES:
        return None
    return (f"OPENBLAS_CORETYPE={coretype_env} holds numpy's OpenBLAS to its {core} "
            f"kernels (no AVX-512) on a CPU with AVX-512: the products numpy's BLAS runs "
            f"(all but those on Lamina's own GEMM, lamina.backend.gemm) run up to ~1.8x "
            f"slower than with OpenBLAS's own choice (unset OPENBLAS_CORETYPE, or set it to "
            f"SkylakeX, before Python starts)")


def _cpu_has(flag: str, path: str = "/proc/cpuinfo"):
    """Whether the CPU's flags (Linux's ``/proc/cpuinfo``) include ``flag``; None where
    the file is not there or has no flags line."""
    try:
        with open(path, encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return flag in line.partition(":")[2].split()
    except OSError:
        return None
    return None


def _after_fork_in_child() -> None:
    # A lock may have been held by another thread at fork time, and blocks open in the
    # parent's other threads never close here: start fresh, and give BLAS back now.
    global _lock, _blas_lock
    _lock = threading.Lock()
    _state["next"] = 0.0
    _blas_lock = threading.Lock()
    _blas["generation"] += 1
    _blas["depth"] = 0
    _give_blas_back_locked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

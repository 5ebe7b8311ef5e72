"""One CPU per replica when a job's shared-memory replicas fill the machine.

Replicas in lockstep on a machine with as many CPUs as replicas (the worker's default:
one CPU per replica actor, all on the worker's node) need one CPU each, all the time.
Linux's scheduler does not keep them apart: sampling the two replica threads of
``bench/worker_allreduce.py`` (MLP, 2 replicas on 2 vCPUs, 2026-12-04 21:55) found
both runnable on the *same* CPU in 25-65% of 200 samples on an otherwise idle machine
(likely causes, not isolated: the barrier's wake-up datagram is a "sync" wake-up,
which favours the waker's CPU for the woken rank; a running replica is cache-hot, so
the balancer is slow to move it; and Ray runs its workers at nice 15, where any nice-0
blip, the driver's poll or the raylet, weighs 28 times a replica in the balancer's
load; with 5 ms spins, i.e. almost no wake-ups, packing fell to 3% of the samples in
two windows of three), and the epochs
where that happened ran at about half speed (pinned: 0.45-0.47 s an epoch, 26.0k
samples/s; unpinned, same minutes: 0.93-1.04 s, 12.3k). So while ``fit`` runs its
epochs, :class:`~lamina.distribute.strategy.DataParallel` pins the calling thread of
rank ``r`` to the ``r``-th CPU it may use, when the ranks of a shared-memory
collective are exactly as many as those CPUs (no other job's replica can be meant to
share them) and run niced (below the processes around them, as Ray's workers);
otherwise nothing changes. The price: a pinned rank cannot leave a CPU that a busy
neighbour process shares (ranks at nice 0 next to one: 12.7-13.1 ms a step pinned
against 11.3-12.2 unpinned, ``bench/replica_step_profile.py``), which is why ranks
at nice 0, which the balancer keeps apart well enough, are left alone.
``LAMINA_PIN_REPLICAS=0`` turns it off, ``1`` pins whenever the ranks are at most
the CPUs.
"""

from __future__ import annotations

import contextlib
import os
import threading

from lamina.backend import env

#: The settings of :func:`replica_cpu` (and of ``$LAMINA_PIN_REPLICAS``).
PIN_CHOICES = ("auto", "0", "1")


def allowed_cpus() -> list[int]:
    """The CPUs this thread may run on, sorted (empty where the OS cannot say)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def replica_cpu(rank: int, world: int, collective, setting: str | None = None) -> int | None:
    """The CPU rank ``rank`` of ``world`` runs on, or None (no pinning).

    Args:
        rank, world: this replica's rank and the number of replicas.
        collective: the replicas' collective (only the shared-memory one: its ranks
            share this machine).
        setting: ``auto`` (pin when the ranks fill the CPUs and run niced), ``0``
            or ``1`` (default: ``$LAMINA_PIN_REPLICAS``, else ``auto``).

    Raises:
        ValueError: for another ``setting`` (naming it).
    """
    from lamina.distribute.shm import SharedMemoryCollective

    if setting is None:
        setting = env.choice("LAMINA_PIN_REPLICAS", PIN_CHOICES, "auto")
    elif setting not in PIN_CHOICES:
        raise ValueError(f"setting must be auto, 0 or 1. Received: setting={setting!r}")
    if setting == "0" or world < 2 or not isinstance(collective, SharedMemoryCollective):
        return None
    cpus = allowed_cpus()
    if not cpus or world > len(cpus):
        return None
    if setting == "auto" and (world != len(cpus) or not niced()):
        return None
    return cpus[rank]


def niced() -> bool:
    """Whether this process runs at a lower priority than the default (nice > 0)."""
    try:
        return os.getpriority(os.PRIO_PROCESS, 0) > 0
    except (AttributeError, OSError):
        return False


@contextlib.contextmanager
def pinned(cpu: int | None):
    """Run the block with the calling thread on ``cpu`` only (None: unchanged).

    After the block, however it ends, the thread's previous CPUs are restored, and so
    are those of the threads the block started that are still pinned to ``cpu``
    (Linux threads inherit their creator's CPUs: a thread pool, a gradient reducer or
    a data loader started during a pinned epoch would otherwise stay on one CPU).
    """
    if cpu is None:
        yield
        return
    try:
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
    except OSError:  # e.g. a CPU set changed under us: run unpinned
        previous = None
    if previous is None:
        yield
        return
    before = {thread.ident for thread in threading.enumerate()}
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)
        _unpin_started(before, cpu, previous)


def _unpin_started(before: set, cpu: int, cpus: set) -> None:
    """Give ``cpus`` back to the live threads not in ``before`` that run on ``cpu`` only
    (the ones that inherited a pinned creator's CPU)."""
    for thread in threading.enumerate():
        tid = getattr(thread, "native_id", None)
        if thread.ident in before or tid is None:
            continue
        try:
            if os.sched_getaffinity(tid) == {cpu}:
                os.sched_setaffinity(tid, cpus)
        except OSError:  # the thread ended meanwhile
            pass

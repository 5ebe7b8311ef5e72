"""Batch lanes for the recurrent primitives: independent per-sample recurrences, one per
thread.

A recurrence is independent per sample, so the batch can be cut into lanes
(:func:`lane_spans`, fixed by the batch size alone) that each run their whole loop on
one thread (:func:`run_lanes`): one hand-off to the pool per sequence instead of one
per chunk of steps. A lane computes the same bits whichever thread runs it, so results
do not depend on the thread count.

Two lanes on two cores run ~1.6x faster than one lane, not 2x: a lane's step is a
dozen small numpy calls, and the two threads sometimes wait for each other's GIL; a
thread that waits sleeps, and waking it took ~30 us on this VM. So the lanes share no
lock between chunks (see :func:`run_lanes`). (Running the weight-gradient GEMMs on a
third thread while the lanes run, to fill those waits, made the backward slower: the
lanes lost their cores to it. One lane with OpenBLAS on two threads took 15.2 ms for
an LSTM step that two lanes run in 10.5.)
"""

from __future__ import annotations

import threading

from lamina.backend.blas_threads import one_blas_thread
from lamina.backend.threads import parallel_for, split

LANES = 2  # batch lanes of run_lanes() when the batch has 2 * MIN_LANE_BATCH rows or more
MIN_LANE_BATCH = 8


def lane_spans(batch):
    """The batch's ``(start, stop)`` lanes: ``LANES`` of them, fixed by the batch size alone
    (one lane for small batches), so a result never depends on the threads."""
    return split(batch, LANES if batch >= LANES * MIN_LANE_BATCH else 1)


def run_lanes(lanes, site=None):
    """Run independent loops (generators that yield after each chunk of steps) on the pool.

    Thread ``i`` (the caller is thread 0) runs lane ``i`` chunk by chunk; a thread whose
    lane is finished takes the next chunk of a lane nobody is running, so a descheduled
    worker costs the caller at most the chunk it is in, and without workers (or while
    the pool runs solo) the caller runs every lane in turn. A thread hands its lane
    back between chunks only while another thread waits for one: the two threads share
    no lock at every chunk (contended, each hand-off put a thread to sleep for ~30 us
    here, 0.5 ms of an LSTM backward). Each lane writes only its own
    outputs and a chunk runs on one thread at a time, so results do not depend on which
    thread ran what. An exception (Ctrl-C) in one lane stops the others at their next
    chunk and is re-raised here. ``site`` names the call site for the pool's choice
    between running pooled or alone (see :func:`lamina.backend.threads.parallel_for`):
    jobs of one site should take comparable times.

    A lane may yield the number of chunks it has left (``None``: unknown) and end without
    a yield after its last chunk: a thread that finds no lane to take then leaves at once
    when every unfinished lane is running its last chunk (nothing would come back to
    take), instead of sleeping until that lane ends and waking only to leave (an LSTM
    pass's last kernel to its return took 156-176 us here before, 98-129 after).
    """
    lanes = list(lanes)
    n = len(lanes)
    busy, done, failed, waiting = [False] * n, [False] * n, [False], [0]
    left = [None] * n  # chunks each lane had left at its last yield (None: unknown)
    cond = threading.Condition()

    def next_lane(first):
        # Under ``cond``: a lane to run next, or None when there is nothing left to do.
        while True:
            if failed[0] or all(done):
                return None
            for j in [*range(first, n), *range(first)]:
                if not done[j] and not busy[j]:
                    busy[j] = True
                    return j
            if all(done[j] or (left[j] is not None and left[j] <= 1) for j in range(n)):
                return None  # (every busy lane is in its last chunk)
            waiting[0] += 1
            cond.wait()
            waiting[0] -= 1

    def part(i):
        try:
            while True:
                with cond:
                    j = next_lane(i)
                if j is None:
                    return
                # (``waiting`` and ``failed`` are read without the lock: a change is seen
                # at the next chunk at the latest)
                while True:
                    step = next(lanes[j], _END)
                    finished = step is _END
                    if not finished:
                        left[j] = step
                    if finished or waiting[0] or failed[0]:
                        break
                with cond:
                    busy[j] = False
                    done[j] = finished
                    cond.notify_all()
        except BaseException:
            with cond:
                failed[0] = True
                cond.notify_all()
            raise

    with one_blas_thread():
        parallel_for(n, part, site=site)


_END = object()

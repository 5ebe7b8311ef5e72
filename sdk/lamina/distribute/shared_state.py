"""One copy of the parameters and optimizer slots for the replicas of one machine.

Replicas on one machine keep bit-identical parameters and optimizer slots, so with the
shared-memory collective they can keep them once: :class:`SharedState` moves the
optimizer's flat buffers (parameters, then each slot; ``Optimizer.relocate``) into a
file next to the collective's (``<collective>.state``), and each rank applies the
update to its own ``1/N`` range of the flat buffers only (as ZeRO-1 shards the
optimizer step, but with nothing to gather: the other ranges are already there).
An elementwise update gives every element the bits of the whole-step update, so
replicas and local ``fit`` agree as before.

The order of a step (``DataParallel``): a variable's update may start once every
rank's backward is done with it, i.e. once the exchange of its bucket completed (a
gradient is reported final only after every use of its variable ran backward), and
must end on every rank before any rank's next forward. With large exchanges (two
barriers, rank ``r`` summing chunk ``r``) rank ``r`` updates its chunk of each
bucket: those of the buckets reduced during backward right after they are, the
last bucket's between the last exchange's barriers, so its second barrier also ends
the update. With small exchanges (one barrier) each rank updates its ``1/N`` after
the exchange and waits at a barrier before its next forward. A step with a missing
gradient gives every rank private copies first (Keras's per-variable update).
Between epochs (and when ``fit`` ends, however it ends) each rank copies the buffers
back to memory of its own (:meth:`SharedState.unshare`), so callbacks, validation,
digests and checkpoints see ordinary private arrays; the next step shares them again.
"""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

import numpy as np


def state_path(collective_path) -> Path:
    """The shared state's file for a collective's file."""
    return Path(f"{collective_path}.state")


class SharedState:
    """This rank's view of the shared parameters and slots of ``optimizer``.

    Args:
        collective: a :class:`~lamina.distribute.shm.SharedMemoryCollective`.
        optimizer: a built optimizer with one segment (``Optimizer.relocate``).
    """

    def __init__(self, collective, optimizer) -> None:
        seg = optimizer._segments[0]
        self.optimizer = optimizer
        self.names = sorted(seg.slots)
        n, rows = seg.param.size, 1 + len(self.names)
        size = max(1, rows * n * seg.param.dtype.itemsize)
        self.path = state_path(collective.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # every rank: the same size, contents kept
            self._buf = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        arrays = np.frombuffer(self._buf, seg.param.dtype, rows * n).reshape(rows, n)
        self._param = arrays[0]
        self._slots = {name: arrays[1 + j] for j, name in enumerate(self.names)}
        bounds = np.linspace(0, n, collective.world + 1).astype(int)
        self.shard = (int(bounds[collective.rank]), int(bounds[collective.rank + 1]))
        self.shared = False
        self.merged = False  # the last exchange's hook updated this step's last range
        self.update_seconds = 0.0  # the exchange hooks' update time this step
        self._pieces: dict = {}

    def share(self) -> None:
        """Move the optimizer's buffers into the shared file (every rank writes the same
        bytes: replicas are identical at a step's start)."""
        self.merged = False  # nothing updated yet this step
        if not self.shared:
            self.optimizer.relocate(self._param, self._slots)
            self.shared = True

    def unshare(self) -> None:
        """Move the buffers back to private memory (same values)."""
        if self.shared:
            seg = self.optimizer._segments[0]
            self.optimizer.relocate(np.array(seg.param),
                                    {name: np.array(seg.slots[name]) for name in self.names})
            self.shared = False

    def exchange_hooks(self, collective, buckets, lr, is_chief: bool):
        """``(early, between, block, settle)`` for a step with large exchanges (all
        gradients present).

        ``early()`` (after :meth:`Buckets.finish`) updates this rank's chunks of the
        buckets reduced already: every rank's backward is done with their variables.
        ``between`` is the last exchange's hook: it updates this rank's chunk of the
        last bucket (or of the vector) before the exchange's second barrier, which
        then also ends the update, and sets :attr:`merged`. A non-chief takes the
        chief's learning rate from the meta rows first. With claimed blocks
        (``collective.claimed``) ``block(lo, hi, early)`` is the exchange's ``update``
        instead (the block's pieces; the chief's rate from its published row), and
        ``settle()``, once the exchange went on, makes this rank's part of the step
        whole even if it took no block (the step's ``apply`` then updates nothing
        more).

        Args:
            collective: the shared-memory collective (:attr:`result`, ``chunk_of``).
            buckets: the step's :class:`~lamina.distribute.buckets.Buckets`, or None.
            lr: the optimizer's learning-rate Variable (None: a schedule).
            is_chief: whether this is rank 0.
        """
        optimizer, result = self.optimizer, collective.result
        interval = optimizer.denormal_flush_interval
        flush = bool(interval) and optimizer._step() % interval == interval - 1
        plans = []
        self.update_seconds, self.merged = 0.0, False

        def update(pieces, rate):
            if lr is not None and not is_chief and rate != float(lr.data):
                lr.assign(np.float32(rate))  # the chief's rate rides on each bucket
            start = time.perf_counter()
            if not plans:
                plans.append(optimizer.begin_update_in_pieces())
            plans[0].apply_pieces(result, pieces, flush)
            self.update_seconds += time.perf_counter() - start

        # The pieces are cut when they are updated: the chunks of the last exchange are
        # sized after its first barrier (lamina.distribute.balance); those of the
        # buckets already reduced may be cut at any shares (their sums are complete).
        def early():
            spans = self.pieces_for(collective, buckets)
            pieces = [piece for span in spans[:-1] for piece in span]
            if pieces:
                update(pieces, buckets.last_metas[0, 1])

        def between(metas):
            if metas[0, 0] != 0.0:  # the chief stopped (it meets a step's first exchange)
                if plans:
                    raise RuntimeError("the chief stopped after a piece of the update")
                return
            update(self.pieces_for(collective, buckets)[-1], metas[0, 1])
            self.merged = True

        def block(lo, hi, early):
            update(self.block_pieces(lo, hi), early[1])
            self.merged = True

        def settle():
            if not plans:  # no block came to this rank: its plan still ends the step
                plans.append(optimizer.begin_update_in_pieces())
                plans[0].apply_pieces(result, [], flush)
            self.merged = True
        return early, between, block, settle

    def block_pieces(self, lo: int, hi: int) -> list:
        """The pieces of floats ``[lo, hi)`` of an unbucketed exchange (the model's
        order), as :meth:`pieces_for` cuts a chunk (cached per block)."""
        seg = self.optimizer._segments[0]
        key = (id(seg), "block", lo, hi)
        pieces = self._pieces.get(key)
        if pieces is None:
            pieces = self._pieces[key] = _cut(seg, seg.offsets[:-1], slice(lo, hi))
        return pieces

    def pieces_for(self, collective, buckets) -> list:
        """Per chunk (of each bucket when bucketed, else of the vector) this rank sums,
        its ``(lo, hi, at)`` pieces cut at variable bounds, ``at`` their place in the
        optimizer's flat buffers; at the collective's current chunk sizes (cached per
        chunk sizes: a few while the shares settle)."""
        seg = self.optimizer._segments[0]
        if buckets is None:  # gradients in the model's order, as the optimizer's
            spans = [collective.chunk_of(0, collective.n)]
        else:  # the last layer first (lamina.distribute.buckets.layout)
            bounds = buckets.bounds
            spans = [collective.chunk_of(bounds[b], bounds[b + 1] - bounds[b])
                     for b in range(buckets.count)]
        key = (id(seg), None if buckets is None else id(buckets),
               tuple((span.start, span.stop) for span in spans))
        pieces = self._pieces.get(key)
        if pieces is not None:
            return pieces
        starts = seg.offsets[:-1] if buckets is None else buckets.offsets
        pieces = [_cut(seg, starts, span) for span in spans]
        if len(self._pieces) > 64:
            self._pieces.clear()
        self._pieces[key] = pieces
        return pieces

    def close(self) -> None:
        """Unshare and release the mapping (the owner removes the file)."""
        self.unshare()
        self._param = self._slots = None
        try:
            self._buf.close()
        except BufferError:  # pragma: no cover - a caller still holds a view
            pass


def _cut(seg, starts, span) -> list:
    """``(lo, hi, at)`` pieces of ``span`` of an exchanged vector whose variables start
    at ``starts``, cut at variable bounds (``at``: the place in the flat buffers) and
    :func:`_merged`."""
    pieces = []
    for i, (start, at) in enumerate(zip(starts, seg.offsets)):
        size = seg.offsets[i + 1] - at
        lo, hi = max(span.start, start), min(span.stop, start + size)
        if lo < hi:
            pieces.append((lo, hi, at + lo - start))
    return _merged(pieces)


def _merged(pieces: list) -> list:
    """``pieces`` with each run of neighbours that are contiguous both in the source and
    in the flat buffers joined into one (an elementwise update gives every element the
    same bits whichever piece holds it). Unbucketed, a rank's chunk is then one piece:
    its small variables (biases, the last layer) no longer take the optimizer's numpy
    path one by one under ``compiled.pays``, which made the rank holding them ~0.1 ms
    slower a step than its peer, who waited for it at the exchange's second barrier."""
    out: list = []
    for lo, hi, at in pieces:
        if out and out[-1][1] == lo and out[-1][2] + (out[-1][1] - out[-1][0]) == at:
            first = out[-1]
            out[-1] = (first[0], hi, first[2])
        else:
            out.append((lo, hi, at))
    return out

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

    def share(self) -> None:
        """Move the optimizer's buffers into the shared file (every rank writes the same
        bytes: replicas are identical at a step's start)."""
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

    def close(self) -> None:
        """Unshare and release the mapping (the owner removes the file)."""
        self.unshare()
        self._param = self._slots = None
        try:
            self._buf.close()
        except BufferError:  # pragma: no cover - a caller still holds a view
            pass

"""An all-reduce among processes of one machine through a shared-memory file.

Layout of the file (``/dev/shm/<name>``; created by :func:`create`, which sizes it)::

    header   int64[8 + 2 world]     world, n, m, abort, balance, ..., an arrival counter
                                    per rank, then a "sleeping" flag per rank
    work     float64[2, world, 2]   each rank's last work between two barriers
                                    (seconds, elements), by exchange parity
    slots    float32[2, world, n]   each rank's (share-weighted) contribution, by parity
    result   float32[n]             the shared sum (large vectors)
    meta     float64[2, world, m]   per-rank side data (control codes, metric states)

One :meth:`SharedMemoryCollective.exchange`: every rank writes its slot and meta row of
this call's parity and arrives at a barrier; then

* small vectors (``world * n`` up to :data:`ONE_BARRIER_BYTES`): every rank sums all
  slots **in rank order** into its own result and copies the meta rows (a gather).
  The two parities make a second barrier unnecessary: a rank writes a parity's slot
  again only two calls later, after a barrier its peers reach only once they finished
  reading it. One barrier per step matters on a busy machine, where a barrier can cost
  a scheduler time slice;
* large vectors: rank ``r`` sums chunk ``r`` of all slots in rank order into the
  shared result, then a second barrier, then every rank reads the shared result (each
  byte is read once instead of once per rank: less memory traffic than a barrier).
  The chunks are sized by the ranks' measured speed (:mod:`lamina.distribute.balance`;
  ``create(balance=False)`` or ``LAMINA_BALANCE_CHUNKS=0``: equal chunks).

Either way every element is summed rank 0 + rank 1 + ... and every rank reads the
same bytes, so replicas stay bit-identical.

A barrier is a counter per rank that only its rank writes (an aligned 8-byte store,
so no atomics are needed on x86-64/aarch64). A waiting rank spins briefly (only on the
thread that opened the collective), then raises
its "sleeping" flag and blocks on its own Unix datagram socket (``<file>.r<rank>``); a
rank that arrives wakes the sleepers with one datagram each. So a rank that waits for
a slow peer gives the peer its core at once, and wakes as soon as the peer arrives (a
wake-up lost to store/load reordering costs at most the 1 ms receive timeout).
"""

from __future__ import annotations

import mmap
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np

from lamina.backend import compiled, env
from lamina.distribute import shm_kernels
from lamina.distribute.balance import ChunkBalance
from lamina.distribute.shared_state import state_path

_HEADER = 8
#: A waiting rank checks its peers' counters this long before it sleeps on its socket.
#: Waking a rank that slept costs ~150 us on this 2-vCPU VM (an idle vCPU halts), on top
#: of the peer's lateness: measured with a peer 0.3-3 ms late, 140-157 us over the
#: lateness after sleeping, against 0-10 us spinning. Short skews (the replicas' steps
#: differ by tens to hundreds of us) are waited out spinning; a peer later than this is
#: descheduled or slower, and then the core is better given away.
_SPIN_SECONDS = 5e-4
#: While spinning, yield the core to any task waiting for it (a peer or a neighbour on
#: an oversubscribed machine); with none, ``sched_yield`` returns at once (~0.7 us).
_SPIN_YIELD = True
_WAKE_TIMEOUT = 1e-3  # a sleeper re-checks at least this often
#: Floats per block of the weighted sum (``exchange(weights=)``): 256 KB products.
_SUM_BLOCK = 65536
#: Up to this many bytes of slots (world * n * 4), every rank sums them all itself.
ONE_BARRIER_BYTES = 1 << 20


class CollectiveAborted(RuntimeError):
    """The group was aborted (a peer failed or the owner tore it down)."""


def _layout(world: int, n: int, m: int) -> dict[str, tuple[int, int]]:
    sizes = {"header": 8 * (_HEADER + 2 * world), "work": 8 * 2 * world * 2,
             "slots": 4 * 2 * world * n,
             "result": 4 * n, "meta": 8 * 2 * world * m}
    offsets, at = {}, 0
    for key, size in sizes.items():
        offsets[key] = (at, size)
        at += -(-size // 64) * 64  # 64-byte aligned sections
    offsets["total"] = (at, 0)
    return offsets


def create(path: str | os.PathLike, world: int, n: int, m: int = 8,
           balance: bool | None = None) -> Path:
    """Create (or truncate) the shared file for ``world`` ranks, ``n`` floats, ``m`` meta.

    ``balance``: the file's (every rank's) setting of :mod:`lamina.distribute.balance`;
    default ``$LAMINA_BALANCE_CHUNKS`` (``0`` turns it off), else on.

    Raises:
        ValueError: for ``world < 1``, ``n < 0`` or ``m < 1`` (naming the value).
    """
    if world < 1 or n < 0 or m < 1:
        raise ValueError(f"Expected world >= 1, n >= 0, m >= 1. Received: world={world}, "
                         f"n={n}, m={m}")
    if balance is None:
        balance = env.flag("LAMINA_BALANCE_CHUNKS", True)
    path = Path(path)
    size = _layout(world, n, m)["total"][0]
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as buf:
            header = np.frombuffer(buf, np.int64, _HEADER)
            header[:5] = (world, n, m, 0, int(bool(balance)))
            del header
    finally:
        os.close(fd)
    return path


def remove(path: str | os.PathLike) -> None:
    """Delete the shared file, the ranks' wake-up sockets and the replicas' shared
    parameters (``<file>.state``, :mod:`lamina.distribute.shared_state`): the owner's
    clean-up."""
    path = Path(path)
    for sock in path.parent.glob(path.name + ".r*"):
        sock.unlink(missing_ok=True)
    state_path(path).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def abort(path: str | os.PathLike) -> None:
    """Make every rank waiting in (or entering) a barrier raise :class:`CollectiveAborted`."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        with mmap.mmap(fd, 8 * _HEADER) as buf:
            header = np.frombuffer(buf, np.int64, _HEADER)
            header[3] = 1
            del header
    finally:
        os.close(fd)


class SharedMemoryCollective:
    """One rank's handle on a file made by :func:`create` (see the module docstring).

    Args:
        path: the shared file.
        rank: this process's rank in ``[0, world)``.
        timeout: seconds a barrier waits before raising ``TimeoutError``.
    """

    #: ``exchange`` reduces any prefix of ``k <= n`` floats (gradient buckets).
    accepts_prefix = True

    def __init__(self, path: str | os.PathLike, rank: int, timeout: float = 600.0) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR)
        try:
            self._buf = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        header = np.frombuffer(self._buf, np.int64, _HEADER)
        self.world, self.n, self.m = (int(v) for v in header[:3])
        if not 0 <= rank < self.world:
            raise ValueError(f"rank must be in [0, {self.world}). Received: rank={rank}")
        self.rank, self.timeout = rank, timeout
        lay = _layout(self.world, self.n, self.m)
        self._header = header
        self._arrive = np.frombuffer(self._buf, np.int64, self.world,
                                     offset=8 * _HEADER)
        # The spin's reads: a memoryview item costs ~60 ns, numpy's min() ~1.8 us.
        self._header_view = memoryview(self._buf)[:8 * _HEADER].cast("q")
        self._arrive_view = memoryview(self._buf)[8 * _HEADER:8 * (_HEADER + self.world)] \
            .cast("q")
        self._sleeping = np.frombuffer(self._buf, np.int64, self.world,
                                       offset=8 * (_HEADER + self.world))
        self._peers = [f"{self.path}.r{r}" for r in range(self.world)]
        Path(self._peers[rank]).unlink(missing_ok=True)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self._peers[rank])
        self._socket.settimeout(_WAKE_TIMEOUT)
        self._slots = np.frombuffer(self._buf, np.float32, 2 * self.world * self.n,
                                    offset=lay["slots"][0]).reshape(2, self.world, self.n)
        # This rank's slot of each parity: the same two view objects every step, so a
        # caller can tell by identity that it was handed the slot (no address reads).
        self._own_slots = (self._slots[0, rank], self._slots[1, rank])
        self._meta = np.frombuffer(self._buf, np.float64, 2 * self.world * self.m,
                                   offset=lay["meta"][0]).reshape(2, self.world, self.m)
        self._work = np.frombuffer(self._buf, np.float64, 2 * self.world * 2,
                                   offset=lay["work"][0]).reshape(2, self.world, 2)
        self._chunked = 4 * self.world * self.n > ONE_BARRIER_BYTES
        if self._chunked:
            self.result = np.frombuffer(self._buf, np.float32, self.n,
                                        offset=lay["result"][0])
        else:
            self.result = np.empty(self.n, np.float32)  # this rank's copy of the sum
        #: The ranks' shares of a large exchange (the same on every rank).
        self.balance = ChunkBalance(self.world, bool(header[4]) and self._chunked)
        self._count = int(self._arrive[rank])
        self._scratch = None  # the weighted sum's products (exchange(weights=))
        self._spinner = threading.get_ident()  # only this thread spins in a barrier
        self.wait_seconds = 0.0  # time spent waiting for peers (last exchange)

    @property
    def slot(self) -> np.ndarray:
        """This rank's slot for the next exchange: fill it in place, then
        ``exchange(collective.slot)``."""
        return self._own_slots[self._count % 2]

    # -- barrier ------------------------------------------------------------------------
    def _barrier(self) -> float:
        arrive, header, sleeping = self._arrive, self._header, self._sleeping
        if header[3]:  # an aborted group completes no more exchanges, even one its
            # peers already arrived at (the wait below only looks while it waits)
            raise CollectiveAborted(f"collective {self.path.name} was aborted")
        self._count += 1
        target = self._count
        arrive[self.rank] = target
        for peer, asleep in enumerate(sleeping.tolist()):  # a snapshot: peers change it
            if asleep and peer != self.rank:
                try:
                    self._socket.sendto(b"w", self._peers[peer])
                except OSError:  # the peer is gone or not bound yet: it re-checks anyway
                    pass
        start = time.perf_counter()
        # Another thread (a gradient reducer) sleeps at once: spinning, it would hold
        # the GIL and stall the thread that computes.
        counts, flags = self._arrive_view, self._header_view
        spin_until = start + (_SPIN_SECONDS if threading.get_ident() == self._spinner
                              else 0.0)
        while min(counts) < target:
            if flags[3]:
                raise CollectiveAborted(f"collective {self.path.name} was aborted")
            now = time.perf_counter()
            if now < spin_until:
                if _SPIN_YIELD:
                    os.sched_yield()  # a task waiting for this core runs; else we go on
                continue
            waited = now - start
            if waited > self.timeout:
                raise TimeoutError(f"rank {self.rank} waited {waited:.0f}s for its peers "
                                   f"(timeout={self.timeout})")
            sleeping[self.rank] = 1
            if min(counts) < target:
                try:
                    self._socket.recv(64)
                except (TimeoutError, BlockingIOError):
                    pass
            sleeping[self.rank] = 0
        return time.perf_counter() - start

    def barrier(self) -> None:
        """Wait until every rank reached this barrier."""
        self._barrier()

    # -- exchange -----------------------------------------------------------------------
    def exchange(self, vector: np.ndarray | None, meta=None, scale: float = 1.0,
                 between=None, weights=None):
        """All-reduce ``scale * vector`` (sum in rank order) and gather ``meta``.

        Args:
            vector: float32 array of ``k <= n`` elements (the sum covers the first
                ``k``; every rank of one exchange passes the same ``k``), None to
                contribute ``n`` zeros, or :attr:`slot` or a range ``slot[lo:hi]`` of
                it that the caller wrote (and scaled) in place (the sum covers that
                range).
            meta: up to ``m`` floats for the gather (None: zeros).
            scale: this rank's weight (e.g. its share of the global batch).
            between: large vectors only (:attr:`chunked`): called as
                ``between(metas)`` once this rank summed its chunk
                (:meth:`chunk_of`) into :attr:`result`, before the barrier that
                ends the exchange; so what it does is done on every rank when
                any rank returns (the shared update's ranges:
                :mod:`lamina.distribute.shared_state`).
            weights: one float32 factor per rank (every rank passes the same), applied
                in the sum: ``sum_r round(weights[r] * slot_r)`` in rank order, the same
                bytes as each rank scaling its own slot by ``weights[r]`` first; lets
                a rank's slot hold unscaled values that backward wrote in place. None:
                the slots are summed as they are.

        Returns:
            ``(result, metas)``: the sums of those floats (a view of :attr:`result`,
                overwritten by the next exchange over them) and
            a copy of every rank's meta row, ``(world, m)`` float64.
        """
        parity = self._count % 2
        slot = self._own_slots[parity]
        lo, k = 0, self.n
        if vector is None:
            slot[:] = 0.0
        elif vector is slot:  # the whole slot, written in place
            pass
        else:
            k = int(np.size(vector))
            if k > self.n:
                raise ValueError(f"vector holds at most n={self.n} values. Received: "
                                 f"size={k}")
            if np.may_share_memory(vector, slot):  # written in place (already scaled)
                lo = (vector.__array_interface__["data"][0]
                      - slot.__array_interface__["data"][0]) // slot.itemsize
            elif scale == 1.0:
                slot[:k] = np.reshape(vector, -1)
            else:
                np.multiply(np.reshape(vector, -1), np.float32(scale), out=slot[:k])
        row = self._meta[parity, self.rank]
        row[:] = 0.0
        if meta is not None:
            meta = np.asarray(meta, np.float64).reshape(-1)
            if meta.size > self.m:
                raise ValueError(f"meta holds at most m={self.m} values. Received: "
                                 f"{meta.size} values")
            row[:meta.size] = meta
        reports = (self._count // 2) % 2  # the rows of reports this exchange reads
        self.wait_seconds = self._barrier()
        if self.balance.enabled:
            self.balance.update(self._work[reports].tolist())
        start = time.perf_counter()
        chunk = self.chunk_of(lo, k)
        slots, out = self._slots[parity, :, chunk], self.result[chunk]
        if weights is not None:
            self._weighted_sum(slots, out, weights)
        elif self.world == 1:
            np.copyto(out, slots[0])
        else:
            np.add(slots[0], slots[1], out=out)
        for j in range(2, self.world if weights is None else 0):
            out += slots[j]
        metas = self._meta[parity].copy()
        if self._chunked:
            if between is not None:
                between(metas)
            if self.balance.enabled:  # for the next exchange: it reads the other rows
                # after its first barrier; they are written again after its second
                self._work[1 - reports, self.rank] = (time.perf_counter() - start,
                                                      chunk.stop - chunk.start)
            self.wait_seconds += self._barrier()
        return (self.result if k == self.n else self.result[lo:lo + k]), metas

    def _weighted_sum(self, slots, out, weights) -> None:
        """``out = sum_j round(weights[j] * slots[j])``, added in rank order."""
        weights = np.asarray(weights, np.float32).reshape(-1)
        if weights.size != self.world:
            raise ValueError(f"weights needs one factor per rank (world={self.world}). "
                             f"Received: {weights.size} factors")
        if self.world == 1:
            np.multiply(slots[0], weights[0], out=out)
            return
        if out.dtype == np.float32 and compiled.pays(out.size):
            shm_kernels.weighted_pair(slots[0], slots[1], weights[0], weights[1], out)
            for j in range(2, self.world):
                shm_kernels.weighted_add(slots[j], weights[j], out)
            return
        if self._scratch is None:
            self._scratch = np.empty(_SUM_BLOCK, np.float32)
        # Block by block, so each product is added while it is in the core's cache
        # (0.26 -> 0.175 ms for two 1.3 MB chunks).
        for lo in range(0, out.size, _SUM_BLOCK):
            hi = min(lo + _SUM_BLOCK, out.size)
            part, scratch = out[lo:hi], self._scratch[:hi - lo]
            np.multiply(slots[0, lo:hi], weights[0], out=part)
            for j in range(1, self.world):
                np.multiply(slots[j, lo:hi], weights[j], out=scratch)
                np.add(part, scratch, out=part)

    def staging(self):
        """``(send, result)`` for in-place range exchanges, or None.

        With a large vector (two barriers an exchange), every exchange leaves the slots
        free (each peer finished reading them before the second barrier) and keeps
        the slot's parity, so a caller may scale values into disjoint ranges of
        ``send`` at any time between exchanges and reduce ``send[lo:hi]`` (a view)
        into ``result[lo:hi]`` while it fills the next range. Small vectors (one
        barrier, alternating slots) give None: exchange a copy instead.
        """
        return (self.slot, self.result) if self._chunked else None

    @property
    def chunked(self) -> bool:
        """Whether exchanges are large (two barriers; rank ``r`` sums chunk ``r``)."""
        return self._chunked

    def chunk_of(self, lo: int, k: int) -> slice:
        """This rank's share of floats ``[lo, lo + k)`` (all of them when not chunked).

        Whether an exchange takes one barrier or two depends on ``n`` only, so ranks
        that reduce different prefixes (the chief's control exchange against a peer's
        gradient bucket) still meet at the same barriers.
        """
        if not self._chunked:
            return slice(lo, lo + k)
        bounds = self.balance.bounds(k)
        return slice(lo + bounds[self.rank], lo + bounds[self.rank + 1])

    def abort(self, reason: str = "aborted") -> None:
        """Make this rank's current or next barrier, and every peer's, raise
        :class:`CollectiveAborted` (safe from another thread; ``reason`` is for the
        caller's log: the group's flag carries none)."""
        if self._header is not None:
            self._header[3] = 1

    def close(self) -> None:
        """Release the mapping (the file stays until its owner removes it)."""
        self._socket.close()
        Path(self._peers[self.rank]).unlink(missing_ok=True)
        for name in ("_header_view", "_arrive_view"):
            view = getattr(self, name, None)
            if view is not None:
                view.release()
        for name in ("_header", "_arrive", "_sleeping", "_work", "_slots", "_own_slots",
                     "_meta", "result",
                     "_header_view", "_arrive_view"):
            setattr(self, name, None)
        try:
            self._buf.close()
        except BufferError:  # a caller still holds a view of ``result``
            pass

"""An all-reduce among processes of one machine through a shared-memory file.

Layout of the file (``/dev/shm/<name>``; created by :func:`create`, which sizes it)::

    header   int64[8 + 2 world]     world, n, m, abort, balance, claim word, claims, ...,
                                    an arrival counter per rank, then a "sleeping" flag
                                    per rank
    work     float64[2, world, 2]   each rank's last work between two barriers
                                    (seconds, elements), by exchange parity
    stamps   int64[world, blocks]   per rank and work block, the exchange whose values
                                    that rank's slot holds final (claimed exchanges)
    early    float64[world, 4]      per rank, values published before its first stamp
                                    and the exchange they are for
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

**Claimed blocks** (large exchanges of the whole slot with an ``update``; on unless
``create(claims=False)`` or ``LAMINA_CLAIMED_BLOCKS=0``): instead of a fixed chunk per
rank, the vector is cut into work blocks (:meth:`SharedMemoryCollective.plan_blocks`,
at the caller's variable bounds) that the ranks take from one queue (a counter in the
header, taken under ``flock`` on the file, so each block goes to exactly one rank);
the taker sums the block in rank order and calls ``update`` on it (the shared
optimizer step, :mod:`lamina.distribute.shared_state`). A block is ready once every
rank has stamped it: backward stamps each block as its gradients land in the slot
(:meth:`~SharedMemoryCollective.land`), and a rank stamps every block when it enters the
exchange. So a rank that arrives first does not idle while a late peer finishes its
backward: it sums and updates the blocks of the layers the peer is already done with
(the last layers: the queue starts at the end of the vector), and the late peer finds
only the rest. The exchange still counts two barriers (an arrival, which the early rank
does not wait for, and the end), so it meets a peer's ordinary exchange, e.g. the
chief's control exchange: a block that some rank did not stamp in this exchange is
never summed or updated.

A barrier is a counter per rank that only its rank writes (an aligned 8-byte store,
so no atomics are needed on x86-64/aarch64). A waiting rank spins briefly (only on the
thread that opened the collective), then raises
its "sleeping" flag and blocks on its own Unix datagram socket (``<file>.r<rank>``); a
rank that arrives wakes the sleepers with one datagram each. So a rank that waits for
a slow peer gives the peer its core at once, and wakes as soon as the peer arrives (a
wake-up lost to store/load reordering costs at most the 1 ms receive timeout).
"""

from __future__ import annotations

import bisect
import fcntl
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
_CLAIM_WORD, _CLAIMS_FLAG = 5, 6  # header words
_CLAIMS_PER_EXCHANGE = 1 << 20  # the claim word: exchange * this + blocks taken
#: Work blocks of claimed exchanges: about this many floats (256 KB) each ...
BLOCK = 65536
#: ... and none smaller than this (merged into the block before it), so a file holds
#: at most ``n // MIN_BLOCK + 2`` of them.
MIN_BLOCK = BLOCK // 4
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


def _capacity(n: int) -> int:
    """Work blocks a file for ``n`` floats has stamps for."""
    return n // MIN_BLOCK + 2


def _layout(world: int, n: int, m: int) -> dict[str, tuple[int, int]]:
    sizes = {"header": 8 * (_HEADER + 2 * world), "work": 8 * 2 * world * 2,
             "stamps": 8 * world * _capacity(n), "early": 8 * world * 4,
             "slots": 4 * 2 * world * n,
             "result": 4 * n, "meta": 8 * 2 * world * m}
    offsets, at = {}, 0
    for key, size in sizes.items():
        offsets[key] = (at, size)
        at += -(-size // 64) * 64  # 64-byte aligned sections
    offsets["total"] = (at, 0)
    return offsets


def create(path: str | os.PathLike, world: int, n: int, m: int = 8,
           balance: bool | None = None, claims: bool | None = None) -> Path:
    """Create (or truncate) the shared file for ``world`` ranks, ``n`` floats, ``m`` meta.

    ``balance``: the file's (every rank's) setting of :mod:`lamina.distribute.balance`;
    default ``$LAMINA_BALANCE_CHUNKS`` (``0`` turns it off), else on. ``claims``: whether
    exchanges with an ``update`` take claimed blocks (module docstring); default
    ``$LAMINA_CLAIMED_BLOCKS`` (``0`` turns it off), else on.

    Raises:
        ValueError: for ``world < 1``, ``n < 0`` or ``m < 1`` (naming the value).
    """
    if world < 1 or n < 0 or m < 1:
        raise ValueError(f"Expected world >= 1, n >= 0, m >= 1. Received: world={world}, "
                         f"n={n}, m={m}")
    if balance is None:
        balance = env.flag("LAMINA_BALANCE_CHUNKS", True)
    if claims is None:
        claims = env.flag("LAMINA_CLAIMED_BLOCKS", True)
    path = Path(path)
    size = _layout(world, n, m)["total"][0]
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as buf:
            header = np.frombuffer(buf, np.int64, _HEADER)
            header[:7] = (world, n, m, 0, int(bool(balance)), 0, int(bool(claims)))
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
        except BaseException:
            os.close(fd)
            raise
        self._lock = fd  # flock'ed around each claim of a work block
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
        self._capacity = _capacity(self.n)
        self._stamps = np.frombuffer(self._buf, np.int64, self.world * self._capacity,
                                     offset=lay["stamps"][0]).reshape(self.world, -1)
        self._stamp_view = memoryview(self._buf)[
            lay["stamps"][0]:lay["stamps"][0] + 8 * self.world * self._capacity].cast("q")
        self._early = np.frombuffer(self._buf, np.float64, self.world * 4,
                                    offset=lay["early"][0]).reshape(self.world, 4)
        self.claims = bool(header[_CLAIMS_FLAG])
        self._blocks: list[int] | None = None  # work block bounds (plan_blocks)
        self._landing = (0, [])  # (exchange, floats of each block not landed yet)
        #: Work blocks this rank summed and updated, and of them before every rank had
        #: arrived (claimed exchanges, since the collective opened).
        self.blocks_taken, self.blocks_early = 0, 0
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
    def _check_in(self) -> int:
        """Count this rank in at its next barrier (waking sleeping peers); its target."""
        if self._header[3]:  # an aborted group completes no more exchanges, even one its
            # peers already arrived at (a wait only looks while it waits)
            raise CollectiveAborted(f"collective {self.path.name} was aborted")
        self._count += 1
        self._arrive[self.rank] = self._count
        self._wake()
        return self._count

    def _wake(self) -> None:
        """One datagram to each peer that sleeps on its socket."""
        for peer, asleep in enumerate(self._sleeping.tolist()):  # a snapshot
            if asleep and peer != self.rank:
                try:
                    self._socket.sendto(b"w", self._peers[peer])
                except OSError:  # the peer is gone or not bound yet: it re-checks anyway
                    pass

    def _wait(self, ready) -> float:
        """Wait until ``ready()``: spinning, then asleep on this rank's socket; seconds."""
        start = time.perf_counter()
        # Another thread (a gradient reducer) sleeps at once: spinning, it would hold
        # the GIL and stall the thread that computes.
        flags = self._header_view
        spin_until = start + (_SPIN_SECONDS if threading.get_ident() == self._spinner
                              else 0.0)
        sleeping = self._sleeping
        while not ready():
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
            if not ready():
                try:
                    self._socket.recv(64)
                except (TimeoutError, BlockingIOError):
                    pass
            sleeping[self.rank] = 0
        return time.perf_counter() - start

    def _barrier(self) -> float:
        target, counts = self._check_in(), self._arrive_view
        return self._wait(lambda: min(counts) >= target)

    def barrier(self) -> None:
        """Wait until every rank reached this barrier."""
        self._barrier()

    # -- exchange -----------------------------------------------------------------------
    def exchange(self, vector: np.ndarray | None, meta=None, scale: float = 1.0,
                 between=None, weights=None, update=None):
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
            update: with claimed blocks (:attr:`claimed`: large vectors, blocks
                planned) and ``vector`` the whole :attr:`slot`, instead of
                ``between``: called as ``update(lo, hi, early)`` for each work block
                ``[lo, hi)`` this rank takes, once its sum is in :attr:`result`, maybe
                before every rank arrived (``early``: the chief's row of
                :meth:`publish`); every block goes to exactly one rank, and only when
                every rank is in an exchange of its whole slot. Every rank passes an
                ``update`` or none.

        Returns:
            ``(result, metas)``: the sums of those floats (a view of :attr:`result`,
                overwritten by the next exchange over them) and
            a copy of every rank's meta row, ``(world, m)`` float64.
        """
        parity = self._count % 2
        slot = self._own_slots[parity]
        lo, k = 0, self.n
        if weights is not None:
            weights = self._factors(weights)
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
        if update is not None and vector is slot and self.claimed:
            return self._exchange_claimed(parity, weights, update)
        reports = (self._count // 2) % 2  # the rows of reports this exchange reads
        self.wait_seconds = self._barrier()
        if self.balance.enabled:
            self.balance.update(self._work[reports].tolist())
        start = time.perf_counter()
        chunk = self.chunk_of(lo, k)
        self._sum(self._slots[parity, :, chunk], self.result[chunk], weights)
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

    def _sum(self, slots, out, weights) -> None:
        """``out`` = the ranks' ``slots`` (weighted) summed in rank order."""
        if weights is not None:
            self._weighted_sum(slots, out, weights)
        elif self.world == 1:
            np.copyto(out, slots[0])
        else:
            np.add(slots[0], slots[1], out=out)
            for j in range(2, self.world):
                out += slots[j]

    # -- claimed blocks -----------------------------------------------------------------
    @property
    def claimed(self) -> bool:
        """Whether exchanges of the whole slot with an ``update`` take claimed blocks."""
        return self.claims and self._chunked and self._blocks is not None

    def plan_blocks(self, bounds) -> bool:
        """Set the work blocks of claimed exchanges: ``bounds`` ``[0, ..., n]``
        (:func:`block_bounds`; every rank the same). Returns whether they are used
        (claims on, large vectors, and no more blocks than the file has stamps for)."""
        bounds = [int(b) for b in bounds]
        if len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != self.n \
                or any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"bounds must rise strictly from 0 to n={self.n}. Received: "
                             f"{bounds[:4]}...{bounds[-2:]} ({len(bounds)} bounds)")
        self._blocks = bounds if len(bounds) - 1 <= self._capacity else None
        self._landing = (0, [])
        return self.claimed

    def publish(self, values) -> None:
        """Values (up to 3 floats) that peers read with this rank's stamps in the next
        exchange, e.g. the chief's learning rate, which a peer needs to update a block
        early: ``update``'s ``early`` is rank 0's. Write them before :meth:`land` (or
        the exchange) in every step; they hold until the end of the next exchange.

        Raises:
            ValueError: for more than 3 values.
        """
        values = np.asarray(values, np.float64).reshape(-1)
        if values.size > 3:
            raise ValueError(f"publish takes up to 3 values. Received: {values.size}")
        row = self._early[self.rank]
        row[:values.size] = values
        row[3] = self._count + 1  # for the next exchange (checked by its readers)

    def land(self, lo: int, hi: int) -> None:
        """Floats ``[lo, hi)`` of this rank's :attr:`slot` hold their final values for
        the next exchange: stamp the work blocks that are now complete (a peer may take
        them). Each float lands once per exchange; the exchange lands the rest."""
        bounds = self._blocks
        if bounds is None or hi <= lo:
            return
        target = self._count + 1
        exchange, left = self._landing
        if exchange != target:
            left = [b - a for a, b in zip(bounds, bounds[1:])]
            self._landing = (target, left)
        stamped = False
        block = bisect.bisect_right(bounds, lo) - 1
        while block < len(left) and bounds[block] < hi:
            left[block] -= min(hi, bounds[block + 1]) - max(lo, bounds[block])
            if left[block] == 0:
                self._stamps[self.rank, block] = target
                stamped = True
            block += 1
        if stamped:
            self._wake()

    def _claim(self, target: int, count: int) -> int:
        """The queue position this rank takes in exchange ``target`` (``count``: none
        left). Under ``flock`` on the file: each position goes to one rank."""
        word = self._header_view
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            current = word[_CLAIM_WORD]
            taken = current % _CLAIMS_PER_EXCHANGE \
                if current // _CLAIMS_PER_EXCHANGE == target else 0
            if taken < count:
                word[_CLAIM_WORD] = target * _CLAIMS_PER_EXCHANGE + taken + 1
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        return taken

    def _exchange_claimed(self, parity: int, weights, update):
        """:meth:`exchange` of the whole slot with claimed blocks (module docstring)."""
        bounds, world = self._blocks, self.world
        count = len(bounds) - 1
        target = self._count + 1
        self._stamps[self.rank, :count] = target  # all of this rank's slot is final
        self._landing = (0, [])
        self._check_in()  # the first barrier: peers see it; this rank does not wait there
        counts, stamps, cap = self._arrive_view, self._stamp_view, self._capacity
        slots, result = self._slots[parity], self.result
        waited, early = 0.0, None
        while True:
            taken = self._claim(target, count)
            if taken >= count:
                break
            block = count - 1 - taken  # the queue starts with the last layers

            def stamped(block=block):
                return all(stamps[r * cap + block] == target for r in range(world))

            def ready(stamped=stamped):
                return stamped() or min(counts) >= target

            waited += self._wait(ready)
            if not stamped():  # a peer arrived without it: not an exchange of its slot
                continue
            lo, hi = bounds[block], bounds[block + 1]
            self._sum(slots[:, lo:hi], result[lo:hi], weights)
            if early is None:
                early = self._early[0].copy()
                if early[3] != target:
                    raise RuntimeError(f"rank 0 published no values for exchange "
                                       f"{target} (publish before every claimed exchange)")
            update(lo, hi, early[:3])
            self.blocks_taken += 1
            self.blocks_early += min(counts) < target
        waited += self._wait(lambda: min(counts) >= target)  # every meta row is written
        metas = self._meta[parity].copy()
        self.wait_seconds = waited + self._barrier()
        return self.result, metas

    def _factors(self, weights) -> np.ndarray:
        """``weights`` as one float32 factor per rank (checked once per exchange)."""
        weights = np.asarray(weights, np.float32).reshape(-1)
        if weights.size != self.world:
            raise ValueError(f"weights needs one factor per rank (world={self.world}). "
                             f"Received: {weights.size} factors")
        return weights

    def _weighted_sum(self, slots, out, weights) -> None:
        """``out = sum_j round(weights[j] * slots[j])``, added in rank order
        (``weights``: :meth:`_factors`)."""
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
        for name in ("_header_view", "_arrive_view", "_stamp_view"):
            view = getattr(self, name, None)
            if view is not None:
                view.release()
        for name in ("_header", "_arrive", "_sleeping", "_work", "_slots", "_own_slots",
                     "_meta", "result", "_stamps", "_early",
                     "_header_view", "_arrive_view", "_stamp_view"):
            setattr(self, name, None)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        try:
            self._buf.close()
        except BufferError:  # a caller still holds a view of ``result``
            pass


def block_bounds(sizes, n: int, block: int | None = None,
                 least: int | None = None) -> list[int]:
    """Work block bounds ``[0, ..., n]`` for variables of ``sizes`` floats laid out back
    to back: cut at every variable's bounds and every ``block`` floats within one
    (default :data:`BLOCK`), then each piece under ``least`` floats (default
    :data:`MIN_BLOCK`) joined to the one before it (the first to the one after), and
    the floats after the variables to the last block. A block is then complete when
    the variables it holds landed (a small bias with its kernel)."""
    block = BLOCK if block is None else block
    least = MIN_BLOCK if least is None else least
    if not len(sizes):
        return [0, n]
    cuts, at = [0], 0
    for size in sizes:
        for start in range(at, at + int(size), block):
            cuts.append(min(start + block, at + int(size)))
        at += int(size)
    if at > n:
        raise ValueError(f"the variables hold {at} floats, more than n={n}")
    cuts = sorted(set(cuts))
    merged = [0]
    for cut in cuts[1:]:
        if cut - merged[-1] < least and len(merged) > 1:
            merged[-1] = cut  # too small: the block before takes it
        else:
            merged.append(cut)
    if len(merged) > 2 and merged[1] < least:
        del merged[1]  # a small first block joins the second
    if len(merged) == 1:
        merged.append(n)
    merged[-1] = n  # the floats after the variables join the last block
    return merged

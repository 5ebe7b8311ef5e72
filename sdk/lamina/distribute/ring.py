"""An all-reduce among processes on any machines: a ring over TCP sockets.

:class:`RingCollective` has the contract of
:class:`~lamina.distribute.shm.SharedMemoryCollective` (what
:class:`~lamina.distribute.strategy.DataParallel` uses), for replicas that do not share
a machine. Set-up (a driver such as Ray relays the addresses)::

    endpoint = ring.listen(host)                # 1. on every rank: a listening socket
    addresses = [endpoint.address of rank 0, 1, ...]   # 2. the driver gathers them
    collective = ring.RingCollective(endpoint, addresses, rank, n, m)  # 3. every rank

Rank ``r`` connects to its successor ``r + 1`` and accepts its predecessor ``r - 1``
(mod ``world``); a hello checks ``world``, ``n``, ``m`` and the ranks.

**Reduction order.** One :meth:`~RingCollective.exchange` is ``2 (world - 1)`` steps;
in each, every rank sends one message to its successor while it receives one from its
predecessor. ``n`` is cut into ``world`` fixed chunks (``linspace`` bounds). At
reduce-scatter step ``s`` rank ``r`` sends chunk ``r - s`` and adds its own
contribution to the chunk ``r - s - 1`` it receives, so chunk ``c`` is summed in rank
order rotated to start at ``c``::

    ((x[c] + x[c + 1]) + x[c + 2]) + ... + x[c - 1]        (ranks mod world)

ending on rank ``c - 1``; the all-gather steps copy every finished chunk round the
ring. Every rank holds the same bytes, run after run (shm sums in plain rank order: the
two differ by float32 rounding). The meta rows ride on the reduce-scatter messages and
are returned in rank order.

**Ranges** (``accepts_prefix``, for :mod:`lamina.distribute.buckets`). An exchange of
``slot[lo:hi]`` (written in place; :meth:`~RingCollective.staging`) or of ``k``
floats (copied to ``slot[:k]``) runs the same steps with each chunk clipped to the
range, so every element is summed in the order its *position* gets in a whole-vector
exchange: the same bytes there. The order depends on the position, and buckets lay
the gradients out last layer first, where one exchange lays them out first layer
first: with 2 ranks the sums are the same anyway (``a + b == b + a`` in IEEE
arithmetic), so bucketed and unbucketed runs are bit-identical; with 3 or more a
variable may move to another chunk and differ by float32 rounding (replicas still
agree bit for bit). Calls are serialized by a lock, so the buckets' reducer thread may
exchange while the opening thread waits; :meth:`~RingCollective.abort` from any thread
ends a waiting call at once.

**Wire.** A message is a 24-byte little-endian header (magic, kind, call number, step,
payload bytes), then raw float64 meta and float32 vector bytes, moved by
``sendmsg``/``recvmsg_into`` from/into preallocated arrays (non-blocking sockets,
``poll``, ``TCP_NODELAY``; set-up in :mod:`lamina.distribute.ring_setup`). A header
that is not the expected one (another kind, call or step) fails the group instead of
misreading bytes; a payload of another range's size is read and dropped (the chief's
control exchange meeting a peer's bucket: only the meta rows count).

**Failure.** A rank that fails (timeout, abort, a lost connection) closes its sockets,
so its successor's receive sees end-of-file and fails too, round the ring: a killed
process (its kernel closes its sockets) makes every peer raise
:class:`~lamina.distribute.shm.CollectiveAborted` once it waits on the ring.
:meth:`RingCollective.abort` does this from another thread of the rank; :func:`abort`
from a driver connects to each rank's listening socket (kept open for that).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time

import numpy as np

from lamina.distribute.ring_setup import (
    ABORT,
    ACCEPT_READ_TIMEOUT,
    BARRIER,
    DATA,
    HEADER,
    MAGIC,
    Endpoint,
    abort,
    connect,
    listen,
    recv_exact,
    shut,
)
from lamina.distribute.shm import CollectiveAborted

__all__ = ["Endpoint", "RingCollective", "abort", "listen"]

_IN, _OUT = select.POLLIN, select.POLLOUT
_BAD = select.POLLERR | select.POLLNVAL


def _advance(views: list, sent: int) -> list:
    """The part of ``views`` (byte memoryviews) left after the first ``sent`` bytes."""
    out = []
    for view in views:
        if sent >= view.nbytes:
            sent -= view.nbytes
            continue
        out.append(view[sent:] if sent else view)
        sent = 0
    return out


class RingCollective:
    """One rank's handle on a ring (see the module docstring).

    Args:
        endpoint: this rank's :class:`Endpoint` (from :func:`listen`); the collective
            owns it from here on (:meth:`close` closes it).
        addresses: every rank's ``endpoint.address``, in rank order (the same list on
            every rank). Every rank must construct its collective concurrently: the
            constructor returns once both ring neighbours are connected.
        rank: this process's rank in ``[0, len(addresses))``.
        n: floats of the vector.
        m: floats of each rank's meta row.
        timeout: seconds the set-up, and each ``exchange``/``barrier``, may wait for
            peers before raising ``TimeoutError``.

    Raises:
        ValueError: for a bad argument (naming it), or when the peers disagree on
            ``world``, ``n`` or ``m``.
        ConnectionError: when the successor cannot be reached.
        TimeoutError: when the predecessor does not connect within ``timeout``.
        CollectiveAborted: when :func:`abort` reached this rank during the set-up.
    """

    #: ``exchange`` reduces any range of ``k <= n`` floats (gradient buckets).
    accepts_prefix = True
    #: an exchange mostly waits on sockets, so buckets overlap it with backward even on
    #: one core (:func:`lamina.distribute.buckets.overlap_pays`).
    transfers_wait_on_io = True

    def __init__(self, endpoint: Endpoint, addresses, rank: int, n: int, m: int = 8,
                 timeout: float = 600.0) -> None:
        addresses = [(str(host), int(port)) for host, port in addresses]
        world = len(addresses)
        if world < 1:
            raise ValueError(f"addresses must name at least one rank. Received: "
                             f"addresses={addresses}")
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, {world}). Received: rank={rank}")
        if n < 0 or m < 1:
            raise ValueError(f"Expected n >= 0 and m >= 1. Received: n={n}, m={m}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0. Received: timeout={timeout}")
        if tuple(endpoint.address) != addresses[rank]:
            raise ValueError(f"addresses[{rank}] must be this rank's endpoint address "
                             f"{endpoint.address}. Received: {addresses[rank]}")
        self.rank, self.world, self.n, self.m = int(rank), world, int(n), int(m)
        self.timeout = float(timeout)
        self.addresses = addresses
        self.wait_seconds = 0.0  # time spent waiting on the ring (last call)
        self._endpoint = endpoint
        self._slot = np.zeros(self.n, np.float32)
        self.result = np.zeros(self.n, np.float32)
        self._metas = np.zeros((world, self.m), np.float64)
        bounds = np.linspace(0, self.n, world + 1).astype(int)
        self._chunks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self._scratch = np.empty(max(b - a for a, b in self._chunks), np.float32)
        self._views = {name: memoryview(array).cast("B") for name, array in
                       (("slot", self._slot), ("result", self.result),
                        ("scratch", self._scratch), ("metas", self._metas.reshape(-1)))}
        self._send_header, self._recv_header = (bytearray(HEADER.size) for _ in "sr")
        self._calls = 0
        self._ranges = self._chunks  # this call's chunks, clipped to its range
        self._call_lock = threading.Lock()  # one call at a time, from any thread
        self._abort_reason: str | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._next = self._prev = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        if world > 1:
            try:
                self._next, self._prev = connect(endpoint, addresses, self.rank,
                                                 self.n, self.m, self.timeout)
            except BaseException:
                self._close_sockets()
                raise
            self._polls = {}
            for key, ring_fds in (("both", ((self._prev, _IN), (self._next, _OUT))),
                                  ("in", ((self._prev, _IN),)),
                                  ("out", ((self._next, _OUT),))):
                poll = select.poll()
                for sock, events in ring_fds:
                    poll.register(sock.fileno(), events)
                poll.register(self._wake_r.fileno(), _IN)
                poll.register(endpoint.socket.fileno(), _IN)
                self._polls[key] = poll
            endpoint.socket.setblocking(False)

    # -- public interface --------------------------------------------------------------
    @property
    def slot(self) -> np.ndarray:
        """This rank's contribution buffer: fill it in place (scaled), then
        ``exchange(collective.slot)``."""
        return self._slot

    def exchange(self, vector: np.ndarray | None, meta=None, scale: float = 1.0):
        """All-reduce ``scale * vector`` (the fixed ring order above) and gather ``meta``.

        Safe to call from any thread (calls are serialized); :meth:`abort` from
        another thread ends a waiting call at once.

        Args:
            vector: float32 array of ``k <= n`` elements (the sum covers the first
                ``k``), None to contribute ``n`` zeros, or :attr:`slot` or a range
                ``slot[lo:hi]`` of it that the caller wrote (and scaled) in place (the
                sum covers that range). Every element is summed in the order of its
                position (above), so a range gives the bytes a whole-vector exchange
                gives there. Every rank passes the same range; when they differ (the
                chief's control exchange meeting a peer's gradient bucket) the meta
                rows are still gathered, but the sums are undefined.
            meta: up to ``m`` floats for the gather (None: zeros).
            scale: this rank's weight (e.g. its share of the global batch).

        Returns:
            ``(result, metas)``: the sums (a view of :attr:`result`, overwritten by
            the next exchange over them) and a copy of every rank's meta row,
            ``(world, m)`` float64, in rank order.

        Raises:
            ValueError: for a vector of more than ``n`` floats or too many meta values.
            CollectiveAborted: when the group was aborted or a peer failed.
            TimeoutError: when peers did not answer within ``timeout``.
        """
        with self._call_lock:
            lo, k = self._fill(vector, scale)
            own = self._metas[self.rank]
            own[:] = 0.0
            if meta is not None:
                meta = np.asarray(meta, np.float64).reshape(-1)
                if meta.size > self.m:
                    raise ValueError(f"meta holds at most m={self.m} values. Received: "
                                     f"{meta.size} values")
                own[:meta.size] = meta
            out = self.result if (lo, k) == (0, self.n) else self.result[lo:lo + k]
            if self.world == 1:
                self._check_usable()
                np.copyto(out, self._slot[lo:lo + k])
                self.wait_seconds = 0.0
                return out, self._metas.copy()
            self._ranges = [(min(max(a, lo), lo + k), max(min(b, lo + k), lo))
                            for a, b in self._chunks]
            self._run(self._exchange_steps)
            return out, self._metas.copy()

    def _fill(self, vector, scale) -> tuple[int, int]:
        """Put ``scale * vector`` into the slot; ``(lo, k)``: the range to reduce."""
        slot = self._slot
        if vector is None:
            slot[:] = 0.0
            return 0, self.n
        k = int(np.size(vector))
        if k > self.n:
            raise ValueError(f"vector holds at most n={self.n} values. Received: "
                             f"size={k}")
        if k and np.may_share_memory(vector, slot):  # written in place (already scaled)
            lo = (vector.__array_interface__["data"][0]
                  - slot.__array_interface__["data"][0]) // slot.itemsize
            return int(lo), k
        vector = np.reshape(vector, -1)
        if scale == 1.0:
            slot[:k] = vector
        else:
            np.multiply(vector, np.float32(scale), out=slot[:k])
        return 0, k

    def staging(self):
        """``(send, result)``: :attr:`slot` and :attr:`result`, for range exchanges in
        place. A caller may scale values into disjoint ranges of ``send`` at any time
        between (or, from another thread, during) exchanges of other ranges, and
        reduce ``send[lo:hi]`` into ``result[lo:hi]``."""
        return self._slot, self.result

    def barrier(self) -> None:
        """Wait until every rank reached this barrier (``world - 1`` empty messages)."""
        with self._call_lock:
            if self.world == 1:
                self._check_usable()
                return
            self._run(self._barrier_steps)

    def abort(self, reason: str = "aborted") -> None:
        """Fail this rank's current or next call with :class:`CollectiveAborted` and
        close its connections, so its peers fail too (safe from another thread)."""
        with self._lock:
            if self._abort_reason is None:
                self._abort_reason = reason
            shut(self._next)
            shut(self._prev)
            with contextlib.suppress(OSError):
                self._wake_w.send(b"a")

    def close(self) -> None:
        """Close the connections and the listening endpoint (idempotent)."""
        self._closed = True
        self._close_sockets()

    # -- the ring ----------------------------------------------------------------------
    def _exchange_steps(self):
        w, r = self.world, self.rank
        views, chunks, m8 = self._views, self._ranges, 8 * self.m
        for s in range(w - 1):  # reduce-scatter; the meta rows ride along
            out, into = (r - s) % w, (r - s - 1) % w
            (a, b), (c, d) = chunks[out], chunks[into]
            source = views["slot"] if s == 0 else views["result"]
            yield (DATA, s, [views["metas"][m8 * out:m8 * (out + 1)], source[4 * a:4 * b]],
                   self._landing(views["metas"][m8 * into:m8 * (into + 1)],
                                 views["scratch"][:4 * (d - c)]))
            np.add(self._scratch[:d - c], self._slot[c:d], out=self.result[c:d])
        for s in range(w - 1):  # all-gather of the finished chunks
            (a, b), (c, d) = chunks[(r + 1 - s) % w], chunks[(r - s) % w]
            yield (DATA, w - 1 + s, [views["result"][4 * a:4 * b]],
                   self._landing(views["metas"][:0], views["result"][4 * c:4 * d]))

    def _landing(self, meta, floats):
        """Where a DATA message's payload of ``size`` bytes goes: ``meta`` then
        ``floats``; floats of another range (a peer reduces another one) are dropped
        into the scratch buffer."""
        def into(size: int) -> list:
            extra = size - meta.nbytes
            if extra == floats.nbytes:
                return [meta, floats]
            if extra < 0 or extra % 4 or extra > self._views["scratch"].nbytes:
                raise ValueError(f"rank {self.rank} expected {meta.nbytes + floats.nbytes}"
                                 f" payload bytes from rank {(self.rank - 1) % self.world}."
                                 f" Received: bytes={size}; the ranks called different "
                                 f"collectives")
            return [meta, self._views["scratch"][:extra]]
        return into

    def _barrier_steps(self):
        for s in range(self.world - 1):
            yield BARRIER, s, [], lambda size: []

    def _check_usable(self) -> None:
        if self._abort_reason is not None:
            raise CollectiveAborted(f"rank {self.rank}: {self._abort_reason}")
        if self._closed:
            raise CollectiveAborted(f"rank {self.rank}: the collective is closed")

    def _run(self, steps) -> None:
        self._check_usable()
        self._calls += 1
        deadline = time.monotonic() + self.timeout
        self.wait_seconds = 0.0
        try:
            self._accept_abort()  # a driver's abort that arrived while we computed
            for kind, step, send, recv in steps():
                self._transfer(kind, step, send, recv, deadline)
        except (CollectiveAborted, TimeoutError, OSError, ValueError) as exc:
            self._abort_reason = self._abort_reason or str(exc)
            self._close_sockets()
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
                raise CollectiveAborted(f"rank {self.rank}: {exc}") from exc
            raise

    def _transfer(self, kind: int, step: int, send: list, into, deadline: float):
        """Send ``send`` (byte views) to the successor while receiving the
        predecessor's message: its header, then the payload into ``into(size)``."""
        HEADER.pack_into(self._send_header, 0, MAGIC, kind, self._calls, step,
                          sum(v.nbytes for v in send))
        send = [memoryview(self._send_header), *(v for v in send if v.nbytes)]
        recv, header = [memoryview(self._recv_header)], True
        while send or recv:
            moved = False
            if send:
                try:
                    sent = self._next.sendmsg(send)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    raise self._failure((self.rank + 1) % self.world, exc) from exc
                if sent:
                    send, moved = _advance(send, sent), True
            if recv:
                try:
                    got = self._prev.recvmsg_into(recv)[0]
                except BlockingIOError:
                    got = -1
                except OSError as exc:
                    raise self._failure((self.rank - 1) % self.world, exc) from exc
                if got == 0:
                    raise self._failure((self.rank - 1) % self.world, "closed")
                if got > 0:
                    recv, moved = _advance(recv, got), True
                    if header and not recv:  # the header is in: now the payload
                        header = False
                        size = self._check_header(kind, step)
                        recv = [v for v in into(size) if v.nbytes]
            if not moved and (send or recv):
                self._wait(bool(send), bool(recv), deadline)

    def _check_header(self, kind: int, step: int) -> int:
        """The payload size of a header that is the expected one (else ValueError)."""
        magic, got_kind, call, got_step, size = HEADER.unpack(self._recv_header)
        if (magic, got_kind, call, got_step) != (MAGIC, kind, self._calls, step):
            raise ValueError(
                f"rank {self.rank} expected (kind={kind}, call={self._calls}, step={step}) "
                f"from rank {(self.rank - 1) % self.world}. Received: (magic={magic!r}, "
                f"kind={got_kind}, call={call}, step={got_step}, bytes={size}); the ranks "
                f"called different collectives")
        return size

    def _wait(self, sending: bool, receiving: bool, deadline: float) -> None:
        key = "both" if sending and receiving else ("out" if sending else "in")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"rank {self.rank} waited {self.timeout:.3g}s for its peers "
                               f"(timeout={self.timeout})")
        start = time.perf_counter()
        events = self._polls[key].poll(remaining * 1e3)
        self.wait_seconds += time.perf_counter() - start
        for fd, flags in events:
            if fd == self._wake_r.fileno():
                raise CollectiveAborted(f"rank {self.rank}: {self._abort_reason}")
            if fd == self._endpoint.socket.fileno():
                self._accept_abort()
            elif flags & _BAD:
                peer = self.rank + (1 if fd == self._next.fileno() else -1)
                raise self._failure(peer % self.world, f"poll flags {flags}")

    def _accept_abort(self) -> None:
        try:
            conn, _ = self._endpoint.socket.accept()
        except BlockingIOError:
            return
        with conn:
            try:
                conn.settimeout(ACCEPT_READ_TIMEOUT)
                magic, kind = struct.unpack_from("<4sI", recv_exact(conn, HEADER.size))
            except OSError:
                return
        if magic == MAGIC and kind == ABORT:
            self._abort_reason = "the ring was aborted by its driver"
            raise CollectiveAborted(f"rank {self.rank}: {self._abort_reason}")

    def _failure(self, peer: int, detail) -> CollectiveAborted:
        if self._abort_reason is not None:  # our own abort() shut the sockets
            return CollectiveAborted(f"rank {self.rank}: {self._abort_reason}")
        return CollectiveAborted(f"rank {self.rank} lost the connection to rank {peer} "
                                 f"({detail}): it failed, was aborted or died")

    def _close_sockets(self) -> None:
        with self._lock:
            for sock in (self._next, self._prev):
                shut(sock)
                if sock is not None:
                    sock.close()
            self._endpoint.close()
            self._wake_r.close()
            self._wake_w.close()

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

**Wire.** A message is a 24-byte little-endian header (magic, kind, call number, step,
payload bytes), then raw float64 meta and float32 vector bytes, moved by
``sendmsg``/``recvmsg_into`` from/into preallocated arrays (non-blocking sockets,
``poll``, ``TCP_NODELAY``). A header that is not the expected one (another kind, call or
size) fails the group instead of misreading bytes.

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

from lamina.distribute.shm import CollectiveAborted

_MAGIC = b"LMRG"
_HELLO, _DATA, _BARRIER, _ABORT = 1, 2, 3, 4
_HEADER = struct.Struct("<4sIQII")    # magic, kind, call number, step, payload bytes
_HELLO_MSG = struct.Struct("<4sIIIQQ")  # magic, kind, rank, world, n, m
_ACCEPT_READ_TIMEOUT = 1.0  # seconds to read a hello / abort from a new connection
_IN, _OUT = select.POLLIN, select.POLLOUT
_BAD = select.POLLERR | select.POLLNVAL


def _default_host() -> str:
    """This machine's outward IP address (a UDP "connect" sends nothing), else loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _shut(sock: socket.socket | None) -> None:
    """Shut both directions (wakes a thread polling it and tells the peer at once)."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Endpoint:
    """A rank's listening socket; :attr:`address` is what the driver gathers.

    Args:
        host: the address peers connect to (None: this machine's outward address).
        port: the port (0: any free one).
    """

    def __init__(self, host: str | None = None, port: int = 0) -> None:
        host = _default_host() if host is None else host
        if not 0 <= int(port) < 65536:
            raise ValueError(f"port must be in [0, 65536). Received: port={port}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, int(port)), family=family, backlog=16)
        self.address: tuple[str, int] = (host, self.socket.getsockname()[1])

    def close(self) -> None:
        """Stop listening."""
        self.socket.close()


def listen(host: str | None = None, port: int = 0) -> Endpoint:
    """Open this rank's listening endpoint (call it in the rank's own process).

    Args:
        host: the address peers connect to (None: this machine's outward address).
        port: the port (0: any free one).

    Returns:
        An :class:`Endpoint`; send ``endpoint.address`` to the driver.
    """
    return Endpoint(host, port)


def abort(addresses, timeout: float = 1.0) -> None:
    """Make every rank of ``addresses`` raise :class:`CollectiveAborted` (a driver's call).

    A rank that is waiting on the ring wakes at once; one that is computing raises in
    its next ``exchange``. Ranks that are gone are skipped.
    """
    frame = _HEADER.pack(_MAGIC, _ABORT, 0, 0, 0)
    for host, port in addresses:
        with contextlib.suppress(OSError), \
                socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.sendall(frame)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = conn.recv(size - len(data))
        if not part:
            raise ConnectionError("the connection closed mid-message")
        data += part
    return data


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
        self._send_header, self._recv_header = (bytearray(_HEADER.size) for _ in "sr")
        self._calls = 0
        self._abort_reason: str | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._next = self._prev = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        if world > 1:
            try:
                self._connect()
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

    # -- set-up ------------------------------------------------------------------------
    def _connect(self) -> None:
        deadline = time.monotonic() + self.timeout
        successor = (self.rank + 1) % self.world
        try:
            self._next = socket.create_connection(self.addresses[successor],
                                                  timeout=self.timeout)
        except OSError as exc:
            raise ConnectionError(f"rank {self.rank} could not reach rank {successor} at "
                                  f"{self.addresses[successor]}: {exc}") from exc
        self._next.sendall(_HELLO_MSG.pack(_MAGIC, _HELLO, self.rank, self.world, self.n,
                                           self.m))
        listener = self._endpoint.socket
        while self._prev is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"rank {self.rank} waited {self.timeout:.3g}s for its "
                                   f"predecessor to connect (timeout={self.timeout})")
            listener.settimeout(remaining)
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            self._prev = self._check_hello(conn)
        for sock in (self._next, self._prev):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)

    def _check_hello(self, conn: socket.socket) -> socket.socket | None:
        """The predecessor's connection, or None for a stray one (closed)."""
        try:
            conn.settimeout(_ACCEPT_READ_TIMEOUT)
            head = _recv_exact(conn, _HEADER.size)
            magic, kind = struct.unpack_from("<4sI", head)
            if magic != _MAGIC:
                conn.close()
                return None
            if kind == _ABORT:
                conn.close()
                raise CollectiveAborted("the ring was aborted during set-up")
            rest = _recv_exact(conn, _HELLO_MSG.size - _HEADER.size)
        except OSError:
            conn.close()
            return None
        _, _, rank, world, n, m = _HELLO_MSG.unpack(head + rest)
        expected = (self.rank - 1) % self.world
        if kind != _HELLO or (rank, world, n, m) != (expected, self.world, self.n, self.m):
            conn.close()
            raise ValueError(f"rank {self.rank} (world={self.world}, n={self.n}, "
                             f"m={self.m}) expected rank {expected} to connect. Received: "
                             f"rank={rank}, world={world}, n={n}, m={m}")
        return conn

    # -- public interface --------------------------------------------------------------
    @property
    def slot(self) -> np.ndarray:
        """This rank's contribution buffer: fill it in place (scaled), then
        ``exchange(collective.slot)``."""
        return self._slot

    def exchange(self, vector: np.ndarray | None, meta=None, scale: float = 1.0):
        """All-reduce ``scale * vector`` (the fixed ring order above) and gather ``meta``.

        Args:
            vector: float32 array of ``n`` elements, None to contribute zeros, or
                :attr:`slot` itself when the caller wrote (and scaled) it in place.
            meta: up to ``m`` floats for the gather (None: zeros).
            scale: this rank's weight (e.g. its share of the global batch).

        Returns:
            ``(result, metas)``: the sum (overwritten by this rank's next exchange) and
            a copy of every rank's meta row, ``(world, m)`` float64, in rank order.

        Raises:
            ValueError: for a vector of another size or too many meta values.
            CollectiveAborted: when the group was aborted or a peer failed.
            TimeoutError: when peers did not answer within ``timeout``.
        """
        slot = self._slot
        if vector is None:
            slot[:] = 0.0
        elif vector is slot or np.may_share_memory(vector, slot):
            pass  # written in place by the caller (already scaled)
        else:
            if np.size(vector) != self.n:
                raise ValueError(f"vector must have n={self.n} elements. Received: "
                                 f"size={np.size(vector)}")
            vector = np.reshape(vector, -1)
            if scale == 1.0:
                slot[:] = vector
            else:
                np.multiply(vector, np.float32(scale), out=slot)
        own = self._metas[self.rank]
        own[:] = 0.0
        if meta is not None:
            meta = np.asarray(meta, np.float64).reshape(-1)
            if meta.size > self.m:
                raise ValueError(f"meta holds at most m={self.m} values. Received: "
                                 f"{meta.size} values")
            own[:meta.size] = meta
        if self.world == 1:
            self._check_usable()
            np.copyto(self.result, slot)
            self.wait_seconds = 0.0
            return self.result, self._metas.copy()
        self._run(self._exchange_steps)
        return self.result, self._metas.copy()

    def barrier(self) -> None:
        """Wait until every rank reached this barrier (``world - 1`` empty messages)."""
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
            _shut(self._next)
            _shut(self._prev)
            with contextlib.suppress(OSError):
                self._wake_w.send(b"a")

    def close(self) -> None:
        """Close the connections and the listening endpoint (idempotent)."""
        self._closed = True
        self._close_sockets()

    # -- the ring ----------------------------------------------------------------------
    def _exchange_steps(self):
        w, r = self.world, self.rank
        views, chunks, m8 = self._views, self._chunks, 8 * self.m
        for s in range(w - 1):  # reduce-scatter; the meta rows ride along
            out, into = (r - s) % w, (r - s - 1) % w
            (a, b), (c, d) = chunks[out], chunks[into]
            source = views["slot"] if s == 0 else views["result"]
            yield (_DATA, s, [views["metas"][m8 * out:m8 * (out + 1)], source[4 * a:4 * b]],
                   [views["metas"][m8 * into:m8 * (into + 1)], views["scratch"][:4 * (d - c)]])
            np.add(self._scratch[:d - c], self._slot[c:d], out=self.result[c:d])
        for s in range(w - 1):  # all-gather of the finished chunks
            (a, b), (c, d) = chunks[(r + 1 - s) % w], chunks[(r - s) % w]
            yield (_DATA, w - 1 + s, [views["result"][4 * a:4 * b]],
                   [views["result"][4 * c:4 * d]])

    def _barrier_steps(self):
        for s in range(self.world - 1):
            yield _BARRIER, s, [], []

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

    def _transfer(self, kind: int, step: int, send: list, recv: list, deadline: float):
        send_bytes = sum(v.nbytes for v in send)
        recv_bytes = sum(v.nbytes for v in recv)
        _HEADER.pack_into(self._send_header, 0, _MAGIC, kind, self._calls, step, send_bytes)
        send = [memoryview(self._send_header), *(v for v in send if v.nbytes)]
        recv = [memoryview(self._recv_header), *(v for v in recv if v.nbytes)]
        received, checked = 0, False
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
                    recv, moved, received = _advance(recv, got), True, received + got
                if not checked and received >= _HEADER.size:
                    self._check_header(kind, step, recv_bytes)
                    checked = True
            if not moved and (send or recv):
                self._wait(bool(send), bool(recv), deadline)

    def _check_header(self, kind: int, step: int, size: int) -> None:
        magic, got_kind, call, got_step, got_size = _HEADER.unpack(self._recv_header)
        if (magic, got_kind, call, got_step, got_size) != (_MAGIC, kind, self._calls, step,
                                                           size):
            raise ValueError(
                f"rank {self.rank} expected (kind={kind}, call={self._calls}, step={step}, "
                f"bytes={size}) from rank {(self.rank - 1) % self.world}. Received: "
                f"(magic={magic!r}, kind={got_kind}, call={call}, step={got_step}, "
                f"bytes={got_size}); the ranks called different collectives")

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
                conn.settimeout(_ACCEPT_READ_TIMEOUT)
                magic, kind = struct.unpack_from("<4sI", _recv_exact(conn, _HEADER.size))
            except OSError:
                return
        if magic == _MAGIC and kind == _ABORT:
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
                _shut(sock)
                if sock is not None:
                    sock.close()
            self._endpoint.close()
            self._wake_r.close()
            self._wake_w.close()

"""Set-up of :mod:`lamina.distribute.ring`: endpoints, the wire's frames, the hello.

A rank opens an :class:`Endpoint` (:func:`listen`), the driver gathers every rank's
``endpoint.address``, and each :class:`~lamina.distribute.ring.RingCollective`
:func:`connect`\\ s to its successor and accepts its predecessor, whose hello must
name the expected rank, ``world``, ``n`` and ``m``. :func:`abort` is the driver's way
to fail every rank (it connects to their listening sockets, which stay open for it).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time

from lamina.distribute.shm import CollectiveAborted

MAGIC = b"LMRG"
HELLO, DATA, BARRIER, ABORT = 1, 2, 3, 4
HEADER = struct.Struct("<4sIQII")    # magic, kind, call number, step, payload bytes
HELLO_MSG = struct.Struct("<4sIIIQQ")  # magic, kind, rank, world, n, m
ACCEPT_READ_TIMEOUT = 1.0  # seconds to read a hello / abort from a new connection


def _default_host() -> str:
    """This machine's outward IP address (a UDP "connect" sends nothing), else loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def shut(sock: socket.socket | None) -> None:
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
    frame = HEADER.pack(MAGIC, ABORT, 0, 0, 0)
    for host, port in addresses:
        with contextlib.suppress(OSError), \
                socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.sendall(frame)


def recv_exact(conn: socket.socket, size: int) -> bytes:
    """``size`` bytes from a blocking ``conn`` (ConnectionError at end-of-file)."""
    data = b""
    while len(data) < size:
        part = conn.recv(size - len(data))
        if not part:
            raise ConnectionError("the connection closed mid-message")
        data += part
    return data


def connect(endpoint: Endpoint, addresses, rank: int, n: int, m: int,
            timeout: float) -> tuple[socket.socket, socket.socket]:
    """Connect ``rank`` to its successor and accept its predecessor.

    Returns:
        ``(next, prev)``: non-blocking ``TCP_NODELAY`` sockets. The caller closes
        them on error (none is left open when this raises).

    Raises:
        ConnectionError, TimeoutError, ValueError, CollectiveAborted: see
        :class:`~lamina.distribute.ring.RingCollective`.
    """
    world = len(addresses)
    deadline = time.monotonic() + timeout
    successor = (rank + 1) % world
    try:
        nxt = socket.create_connection(addresses[successor], timeout=timeout)
    except OSError as exc:
        raise ConnectionError(f"rank {rank} could not reach rank {successor} at "
                              f"{addresses[successor]}: {exc}") from exc
    prev = None
    try:
        nxt.sendall(HELLO_MSG.pack(MAGIC, HELLO, rank, world, n, m))
        listener = endpoint.socket
        while prev is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"rank {rank} waited {timeout:.3g}s for its "
                                   f"predecessor to connect (timeout={timeout})")
            listener.settimeout(remaining)
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            prev = _check_hello(conn, rank, world, n, m)
        for sock in (nxt, prev):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
    except BaseException:
        for sock in (nxt, prev):
            if sock is not None:
                sock.close()
        raise
    return nxt, prev


def _check_hello(conn: socket.socket, rank: int, world: int, n: int,
                 m: int) -> socket.socket | None:
    """The predecessor's connection, or None for a stray one (closed)."""
    try:
        conn.settimeout(ACCEPT_READ_TIMEOUT)
        head = recv_exact(conn, HEADER.size)
        magic, kind = struct.unpack_from("<4sI", head)
        if magic != MAGIC:
            conn.close()
            return None
        if kind == ABORT:
            conn.close()
            raise CollectiveAborted("the ring was aborted during set-up")
        rest = recv_exact(conn, HELLO_MSG.size - HEADER.size)
    except OSError:
        conn.close()
        return None
    _, _, got_rank, got_world, got_n, got_m = HELLO_MSG.unpack(head + rest)
    expected = (rank - 1) % world
    if kind != HELLO or (got_rank, got_world, got_n, got_m) != (expected, world, n, m):
        conn.close()
        raise ValueError(f"rank {rank} (world={world}, n={n}, m={m}) expected rank "
                         f"{expected} to connect. Received: rank={got_rank}, "
                         f"world={got_world}, n={got_n}, m={got_m}")
    return conn

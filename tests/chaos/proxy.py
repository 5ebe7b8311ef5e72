"""A TCP fault proxy for tests: sits between two processes and misbehaves on demand.

``FaultProxy`` listens on a free loopback port and forwards every connection to a
target. Its faults switch at runtime, from any thread:

- ``pass``: forward as is.
- ``delay``: hold each chunk ``delay_ms`` (plus seeded jitter up to ``jitter_ms``).
- ``drop``: a partition: connections are accepted but nothing is forwarded (bytes
  wait, as unacknowledged TCP segments would) until the mode changes; a healed
  partition delivers them in order.
- ``refuse``: the listening socket is closed; new connections get ECONNREFUSED.
- :meth:`FaultProxy.cut`: every live connection is closed with a TCP RST, both sides.

A :class:`Rule` narrows a fault to one direction (``up``: client to target, ``down``:
target to client), to connections whose latest request contains some bytes
(``match=b"POST /v1/jobs"``) and to a number of chunks, after which it is spent. A
``cut`` rule resets the connection a chunk travels on instead of forwarding it (the
"request arrived, the answer was lost" fault).

The proxy runs an asyncio loop in a daemon thread; use it as a context manager.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from dataclasses import dataclass

MODES = ("pass", "delay", "drop", "cut")
DIRECTIONS = ("up", "down", "both")
CHUNK = 65536
REQUEST_HEAD = 4096  # bytes of a request kept for ``Rule.match``


@dataclass
class Rule:
    """One fault.

    Attributes:
        mode: ``pass``, ``delay``, ``drop`` or ``cut``.
        direction: ``up`` (client to target), ``down`` (target to client) or ``both``.
        delay_ms: hold of each chunk in ``delay`` mode.
        jitter_ms: up to this much more, drawn from the proxy's seeded generator.
        match: only on connections whose latest request (the client's bytes since the
            target last answered) contains these bytes.
        times: chunks the rule applies to before it is spent (None: until replaced).
    """

    mode: str = "pass"
    direction: str = "both"
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    match: bytes | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; received mode={self.mode!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}; "
                             f"received direction={self.direction!r}")


class _Link:
    """One proxied connection: the client's and the target's streams."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.target: asyncio.StreamWriter | None = None
        self.request = b""  # the client's bytes since the target's last answer (capped)
        self.answered = False
        self.tasks: list[asyncio.Task] = []

    def reset(self) -> None:
        """Close both sides with RST (SO_LINGER 0), not a FIN."""
        for writer in (self.client, self.target):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            try:
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            except OSError:
                pass
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` with switchable faults.

    Args:
        target_host: where connections go.
        target_port: the target's port.
        seed: seeds the delay jitter (the only randomness), so a run replays.

    Attributes:
        port: the proxy's listening port (stable across ``refuse`` and back).
        accepted: connections accepted so far.
        resets: connections reset by :meth:`cut` or a ``cut`` rule.
    """

    def __init__(self, target_host: str, target_port: int, seed: int = 0) -> None:
        self.target = (target_host, target_port)
        self.random = random.Random(seed)
        self.port = 0
        self.accepted = 0
        self.resets = 0
        self._rules: list[Rule] = [Rule()]
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._changed: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fault-proxy")

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._setup())
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and end the loop's thread."""
        if not self._thread.is_alive():
            return
        self._call(self._teardown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    # -- faults -------------------------------------------------------------------------
    def set(self, mode: str = "pass", **rule) -> None:
        """Make ``Rule(mode, **rule)`` the only fault (``set()`` heals everything)."""
        self._replace([Rule(mode, **rule)])

    def add(self, mode: str, **rule) -> None:
        """Put ``Rule(mode, **rule)`` before the others (it is looked at first)."""
        self._replace([Rule(mode, **rule), *self._rules])

    def cut(self) -> int:
        """Reset every live connection now; returns how many were cut."""
        return self._call(self._cut_all())

    def refuse(self, on: bool = True) -> None:
        """Close the listener (connections are refused) or open it again, same port."""
        self._call(self._listen(not on))

    @property
    def live(self) -> int:
        """Connections open now."""
        return len(self._links)

    # -- internals ----------------------------------------------------------------------
    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def _replace(self, rules: list[Rule]) -> None:
        self._call(self._apply(rules))

    async def _apply(self, rules: list[Rule]) -> None:
        self._rules = rules
        self._changed.set()  # wakes whatever a ``drop`` holds, to look at the new rules
        self._changed = asyncio.Event()

    async def _setup(self) -> None:
        self._changed = asyncio.Event()
        await self._listen(True)

    async def _listen(self, on: bool) -> None:
        if on and self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True)
            self.port = self._server.sockets[0].getsockname()[1]
        elif not on and self._server is not None:
            self._server.close()
            self._server = None

    async def _teardown(self) -> None:
        await self._listen(False)
        await self._cut_all(count=False)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _cut_all(self, count: bool = True) -> int:
        links = list(self._links)
        for link in links:
            link.reset()
        self._links.clear()
        if count:
            self.resets += len(links)
        return len(links)

    def _rule_for(self, link: _Link, direction: str, chunk: bytes) -> Rule | None:
        for rule in self._rules:
            if rule.direction not in (direction, "both"):
                continue
            if rule.match is not None and rule.match not in link.request:
                continue
            if rule.times is not None:
                if rule.times <= 0:
                    continue
                rule.times -= 1
            return rule
        return None

    async def _blocked(self, link: _Link, direction: str, chunk: bytes) -> bool:
        """Apply the fault to one chunk; True when the link was reset instead."""
        while True:
            rule = self._rule_for(link, direction, chunk)
            if rule is None or rule.mode == "pass":
                return False
            if rule.mode == "cut":
                self.resets += 1
                self._links.discard(link)
                link.reset()
                return True
            if rule.mode == "delay":
                extra = self.random.uniform(0, rule.jitter_ms) if rule.jitter_ms else 0.0
                await asyncio.sleep((rule.delay_ms + extra) / 1000)
                return False
            await self._changed.wait()  # drop: wait until the faults change, then look again

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        try:
            while any(r.mode == "drop" and r.direction in ("up", "both") and r.match is None
                      for r in self._rules):
                await self._changed.wait()  # a partition: accepted, never connected on
            target_reader, link.target = await asyncio.open_connection(*self.target)
        except (OSError, asyncio.CancelledError):
            self._links.discard(link)
            link.reset()
            return
        link.tasks = [asyncio.ensure_future(self._pump(link, reader, link.target, "up")),
                      asyncio.ensure_future(self._pump(link, target_reader, writer, "down"))]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        if link in self._links:  # both sides ended with a FIN: close normally
            self._links.discard(link)
            writer.close()
            link.target.close()

    async def _pump(self, link: _Link, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, direction: str) -> None:
        try:
            while True:
                chunk = await reader.read(CHUNK)
                if not chunk:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                    return
                if direction == "up":
                    if link.answered:
                        link.request, link.answered = b"", False
                    link.request = (link.request + chunk)[:REQUEST_HEAD]
                else:
                    link.answered = True
                if await self._blocked(link, direction, chunk):
                    return
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            if link in self._links:
                self._links.discard(link)
                link.reset()

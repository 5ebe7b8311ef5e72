"""Server-Sent Event streams: caps on open streams, the async event bodies (a job's
events, a tenant's job changes), release.

An open stream holds no thread: its body is an async generator awaiting one
blocking ``XREAD`` on the event loop. Caps are per API process (a stream lives
in one process): ``quotas.max_streams`` in all and ``quotas.max_streams_per_tenant``
per tenant; beyond them the request is refused with 429 before anything is read.
The slot is released when the response ends for any reason (job finished,
client gone, server shutting down), by :class:`EventStreamResponse`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from lamina_service import metrics
from lamina_service.errors import TooManyRequests
from lamina_service.queue.follow import Follower
from lamina_service.queue.models import TERMINAL

_TERMINAL = frozenset(s.value for s in TERMINAL)


class StreamSlots:
    """Counts open event streams of this process, per tenant and in all.

    Args:
        total: cap on all open streams.
        per_tenant: cap on one tenant's open streams.
    """

    def __init__(self, total: int, per_tenant: int) -> None:
        self.total = total
        self.per_tenant = per_tenant
        self.open: Counter[str] = Counter()

    @property
    def in_use(self) -> int:
        """Streams open now."""
        return sum(self.open.values())

    def acquire(self, tenant: str) -> None:
        """Take a slot for ``tenant``.

        Raises:
            TooManyRequests: a cap is reached (names the cap in ``limit``).
        """
        if self.open[tenant] >= self.per_tenant:
            raise TooManyRequests(
                f"tenant has {self.open[tenant]} open event streams; the limit "
                f"quotas.max_streams_per_tenant is {self.per_tenant}",
                limit="max_streams_per_tenant", retry_after=5)
        if self.in_use >= self.total:
            raise TooManyRequests(
                f"this API process serves {self.in_use} event streams; the limit "
                f"quotas.max_streams is {self.total}", limit="max_streams", retry_after=5)
        self.open[tenant] += 1
        metrics.OPEN_STREAMS.inc()

    def release(self, tenant: str) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        self.open[tenant] -= 1
        if self.open[tenant] <= 0:
            del self.open[tenant]
        metrics.OPEN_STREAMS.dec()


def _frame(event) -> str:
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.data)}\n\n"


async def event_body(follower: Follower, tenant: str, job_id: str, after: str,
                     block_ms: int) -> AsyncIterator[str]:
    """SSE frames of a job's events from ``after`` until its terminal state event.

    A read that waits ``block_ms`` without news sends a keep-alive comment and checks
    that the job still exists (its record may expire while followed).
    """
    while True:
        events = await follower.events(job_id, after, block_ms)
        for event in events:
            after = event.id
            yield _frame(event)
            if event.type == "state" and event.data.get("status") in _TERMINAL:
                return
        if not events:
            status = await follower.status(tenant, job_id)
            if status is None or status in TERMINAL:
                for event in await follower.events(job_id, after):
                    yield _frame(event)
                return
            yield ": keep-alive\n\n"


async def tenant_event_body(follower: Follower, tenant: str, after: str,
                            block_ms: int) -> AsyncIterator[str]:
    """SSE frames of ``tenant``'s job changes after stream id ``after``.

    Never ends by itself (the client leaves); a read that waits ``block_ms`` without
    news sends a keep-alive comment, which is also how a gone client is noticed.
    """
    yield ": connected\n\n"  # the client knows the stream is open before any change
    while True:
        events = await follower.tenant_events(tenant, after, block_ms)
        for event in events:
            after = event.id
            yield _frame(event)
        if not events:
            yield ": keep-alive\n\n"


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response that releases its stream slot when it ends.

    Args:
        body: the frames.
        slots: where the slot was taken.
        tenant: whose slot it is.
    """

    def __init__(self, body: AsyncIterator[str], slots: StreamSlots, tenant: str) -> None:
        super().__init__(body, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._slots = slots
        self._tenant = tenant

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.release(self._tenant)

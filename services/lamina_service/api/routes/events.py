"""Live events as Server-Sent Events, resumable with Last-Event-ID: one job's events
(``/v1/jobs/{job_id}/events``) and every change of the caller's jobs (``/v1/events``).

Served on the event loop (no thread per stream); see :mod:`lamina_service.api.streams`.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header

from lamina_service.api.deps import FollowerDep, JobIdDep, SettingsDep, StreamSlotsDep, TenantDep
from lamina_service.api.schemas import ErrorOut
from lamina_service.api.streams import EventStreamResponse, event_body, tenant_event_body
from lamina_service.errors import NotFound

router = APIRouter(tags=["events"], responses={401: {"model": ErrorOut},
                                               429: {"model": ErrorOut}})
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
SSE = {200: {"content": {"text/event-stream": {}}}}
LastEventId = Annotated[str | None, Header(max_length=50)]


@router.get("/v1/jobs/{job_id}/events", status_code=200, response_class=EventStreamResponse,
            responses={**SSE, 404: {"model": ErrorOut}})
async def events(job_id: JobIdDep, tenant: TenantDep, follower: FollowerDep,
                 slots: StreamSlotsDep, settings: SettingsDep,
                 last_event_id: LastEventId = None) -> EventStreamResponse:
    """Follow the job: ``state``, ``batch`` and ``epoch`` events; ends when it finishes.

    A quiet stream carries a ``: keep-alive`` comment every ``sse_poll_ms``. Too many
    open streams (per tenant or per process) answer 429 with ``Retry-After``.
    """
    if await follower.status(tenant, job_id) is None:
        raise NotFound(f"no such job: {job_id!r}", field="job_id")
    after = last_event_id if last_event_id and STREAM_ID.fullmatch(last_event_id) else "0-0"
    slots.acquire(tenant)
    return EventStreamResponse(event_body(follower, tenant, job_id, after, settings.sse_poll_ms),
                               slots, tenant)


@router.get("/v1/events", status_code=200, response_class=EventStreamResponse)
async def tenant_events(tenant: TenantDep, follower: FollowerDep, slots: StreamSlotsDep,
                        settings: SettingsDep,
                        last_event_id: LastEventId = None) -> EventStreamResponse:
    """Follow every job of the caller: ``state`` events ``{job_id, status}`` when a job
    changes state and ``epoch`` events ``{job_id, epoch}`` when it finishes an epoch.

    Without ``Last-Event-ID`` the stream starts with the next change (every change
    after the 200 answer is on it); with it, right
    after that event (the last few thousand changes are kept). The stream does not end
    by itself; a quiet one carries a ``: keep-alive`` comment every ``sse_poll_ms``. It
    takes a stream slot like a job's events (429 beyond the caps).
    """
    after = last_event_id if last_event_id and STREAM_ID.fullmatch(last_event_id) else None
    if after is None:
        # "now" is read before the 200 goes out: a client that has the headers is
        # following, and a change it makes next is on the stream
        after = await follower.tenant_events_head(tenant)
    slots.acquire(tenant)
    return EventStreamResponse(tenant_event_body(follower, tenant, after, settings.sse_poll_ms),
                               slots, tenant)

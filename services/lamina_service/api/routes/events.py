"""Live events of a job as Server-Sent Events, resumable with Last-Event-ID.

Served on the event loop (no thread per stream); see :mod:`lamina_service.api.streams`.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header

from lamina_service.api.deps import FollowerDep, JobIdDep, SettingsDep, StreamSlotsDep, TenantDep
from lamina_service.api.schemas import ErrorOut
from lamina_service.api.streams import EventStreamResponse, event_body
from lamina_service.errors import NotFound

router = APIRouter(prefix="/v1/jobs/{job_id}", tags=["events"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                              429: {"model": ErrorOut}})
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
SSE = {200: {"content": {"text/event-stream": {}}}}


@router.get("/events", status_code=200, response_class=EventStreamResponse, responses=SSE)
async def events(job_id: JobIdDep, tenant: TenantDep, follower: FollowerDep,
                 slots: StreamSlotsDep, settings: SettingsDep,
                 last_event_id: Annotated[str | None, Header(max_length=50)] = None,
                 ) -> EventStreamResponse:
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

"""Live events of a job as Server-Sent Events, resumable with Last-Event-ID."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from lamina_service import service
from lamina_service.api.deps import JobIdDep, ProducerDep, SettingsDep, TenantDep
from lamina_service.api.schemas import ErrorOut
from lamina_service.queue import Producer
from lamina_service.queue.models import TERMINAL

router = APIRouter(prefix="/v1/jobs/{job_id}", tags=["events"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}})
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
SSE = {200: {"content": {"text/event-stream": {}}}}


def _stream(producer: Producer, tenant: str, job_id: str, after: str,
            block_ms: int) -> Iterator[str]:
    idle = 0
    while True:
        events = producer.events(tenant, job_id, after, block_ms)
        if events is None:  # expired while following
            return
        for event in events:
            after = event.id
            yield f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.data)}\n\n"
            if event.type == "state" and event.data.get("status") in {s.value for s in TERMINAL}:
                return
        if not events:
            status = producer.status(tenant, job_id)
            if status is None or status in TERMINAL:
                if not producer.events(tenant, job_id, after):
                    return
                continue
            idle += 1
            if idle % 15 == 0:
                yield ": keep-alive\n\n"


@router.get("/events", response_class=StreamingResponse, responses=SSE)
def events(job_id: JobIdDep, tenant: TenantDep, producer: ProducerDep, settings: SettingsDep,
           last_event_id: Annotated[str | None, Header(max_length=50)] = None,
           ) -> StreamingResponse:
    """Follow the job: ``state``, ``batch`` and ``epoch`` events; ends when it finishes."""
    service.require_job(producer, tenant, job_id)
    after = last_event_id if last_event_id and STREAM_ID.fullmatch(last_event_id) else "0-0"
    return StreamingResponse(
        _stream(producer, tenant, job_id, after, settings.sse_poll_ms),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

"""What the web dashboard reads beyond the jobs API, and its static files.

``GET /v1/dashboard/jobs`` pages the caller's jobs as table rows (model class,
parameters, replicas, epochs, best value) and ``GET /v1/dashboard/jobs/{job_id}``
gives a job's summary (model layers, compile/fit settings, history). ``/web/...``
serves the page's own files (see :mod:`lamina_service.webpage`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from lamina_service import dashboard, webpage
from lamina_service.api.deps import JobIdDep, ProducerDep, SettingsDep, TenantDep
from lamina_service.api.schemas import ErrorOut, Strict
from lamina_service.queue import JobStatus

api = APIRouter(prefix="/v1/dashboard", tags=["dashboard"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                              422: {"model": ErrorOut}, 429: {"model": ErrorOut},
                              503: {"model": ErrorOut}})
static = APIRouter(tags=["web"])


class BestOut(Strict):
    """The best epoch of the monitored metric."""

    metric: str
    value: float
    epoch: int
    mode: str


class JobRow(Strict):
    """One job as a row of the dashboard's jobs table."""

    id: str
    name: str | None
    status: JobStatus
    priority: str
    attempts: int
    epoch: int | None
    epochs: int | None
    replicas: int
    model_class: str | None
    params: int | None
    best: BestOut | None
    worker: str | None
    cancel_requested: bool
    has_model: bool
    error: str | None
    submitted_at: float
    started_at: float | None
    finished_at: float | None


class JobRows(Strict):
    """A page of rows, newest first; ``next_offset`` null on the last page; ``total`` the
    jobs listed over all pages when read (jobs whose records expired and were not yet
    met by a page still count), so the other pages can be asked for at once."""

    items: list[JobRow]
    next_offset: int | None
    total: int


class LayerOut(Strict):
    name: str | None
    class_name: str | None
    output_shape: list[int | None] | None
    params: int | None


class ModelSummaryOut(Strict):
    """``built`` is false when only the configured layers could be listed."""

    built: bool
    params: int | None
    layers: list[LayerOut]


class JobSummary(Strict):
    """A job for the job view: its row, history, model summary and settings."""

    row: JobRow
    history: dict[str, list[float | None]]
    model: ModelSummaryOut
    compile: dict[str, Any]
    fit: dict[str, Any]
    callbacks: list[dict[str, Any]]
    dataset_id: str | None
    final_logs: dict[str, Any] | None


@api.get("/jobs", response_model=JobRows)
def jobs(tenant: TenantDep, producer: ProducerDep, settings: SettingsDep,
         status: JobStatus | None = None,
         offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
         limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> JobRows:
    """The caller's jobs as dashboard rows, newest first."""
    rows, next_offset, total = dashboard.job_rows(producer, settings.limits, tenant, status,
                                                  offset, limit)
    return JobRows(items=[JobRow(**row) for row in rows], next_offset=next_offset,
                   total=total)


@api.get("/jobs/{job_id}", response_model=JobSummary)
def job(job_id: JobIdDep, tenant: TenantDep, producer: ProducerDep,
        settings: SettingsDep) -> JobSummary:
    """One job's summary: model layers, settings, history."""
    return JobSummary(**dashboard.job_summary(producer, settings.limits, tenant, job_id))


@static.get("/web/{path:path}", include_in_schema=False)
def asset(path: str) -> Response:
    """A file of the page (its script, styles, the vendored chart library); 404 otherwise."""
    body, media_type = webpage.asset(path)
    return Response(body, media_type=media_type,
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@static.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """The page's icon, where browsers look for it."""
    return asset("favicon.svg")


router = APIRouter()
router.include_router(api)
router.include_router(static)

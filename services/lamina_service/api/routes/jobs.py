"""Jobs: submit, list, read, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from lamina_service import service
from lamina_service.api.deps import FollowerDep, JobIdDep, ProducerDep, SettingsDep, TenantDep
from lamina_service.api.schemas import ErrorOut, JobCreate, JobCreated, JobOut, JobPage
from lamina_service.queue import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                              429: {"model": ErrorOut},
                              413: {"model": ErrorOut}, 422: {"model": ErrorOut},
                              503: {"model": ErrorOut}})


@router.post("", status_code=202, response_model=JobCreated)
def submit(body: JobCreate, tenant: TenantDep, producer: ProducerDep,
           settings: SettingsDep) -> JobCreated:
    """Validate a job and queue it."""
    return service.submit_job(producer, settings, tenant, body)


@router.get("", response_model=JobPage)
async def list_jobs(
    tenant: TenantDep, follower: FollowerDep,
    status: JobStatus | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    """The caller's jobs, newest first."""
    return await service.list_jobs(follower, tenant, status, offset, limit)


@router.get("/{job_id}", response_model=JobOut)
async def get(job_id: JobIdDep, tenant: TenantDep, follower: FollowerDep) -> JobOut:
    """One job with its history."""
    return await service.get_job(follower, tenant, job_id)


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: JobIdDep, tenant: TenantDep, producer: ProducerDep) -> JobOut:
    """Cancel a queued job, or ask a running one to stop after its current batch."""
    return service.cancel_job(producer, tenant, job_id)

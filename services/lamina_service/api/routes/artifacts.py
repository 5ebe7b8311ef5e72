"""Artifacts of a job: the final model and the checkpoints (opaque names only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from lamina_service import service
from lamina_service.api.deps import JobIdDep, ProducerDep, StorageDep, TenantDep
from lamina_service.api.schemas import CheckpointOut, ErrorOut

router = APIRouter(prefix="/v1/jobs/{job_id}", tags=["artifacts"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                              429: {"model": ErrorOut}})
BINARY = {200: {"content": {"application/octet-stream": {}}}}


@router.get("/model", response_class=FileResponse, responses=BINARY)
def model(job_id: JobIdDep, tenant: TenantDep, producer: ProducerDep,
          storage: StorageDep) -> FileResponse:
    """The trained model as a ``.keras`` file."""
    service.require_job(producer, tenant, job_id)
    return FileResponse(storage.final_model(job_id), media_type="application/octet-stream",
                        filename=f"{job_id}.keras")


@router.get("/checkpoints", response_model=list[CheckpointOut])
def checkpoints(job_id: JobIdDep, tenant: TenantDep, producer: ProducerDep,
                storage: StorageDep) -> list[CheckpointOut]:
    """The job's checkpoint files."""
    service.require_job(producer, tenant, job_id)
    return [CheckpointOut(**item) for item in storage.list_checkpoints(job_id)]


@router.get("/checkpoints/{name}", response_class=FileResponse, responses=BINARY)
def checkpoint(job_id: JobIdDep, name: Annotated[str, Path(max_length=200)],
               tenant: TenantDep, producer: ProducerDep, storage: StorageDep) -> FileResponse:
    """One checkpoint file by name (as listed)."""
    service.require_job(producer, tenant, job_id)
    return FileResponse(storage.checkpoint_file(job_id, name),
                        media_type="application/octet-stream", filename=name)

"""Artifacts of a job: the final model and the checkpoints (opaque names only)."""

from __future__ import annotations

import os
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from lamina_service import service
from lamina_service.api.deps import JobIdDep, ProducerDep, StorageDep, TenantDep
from lamina_service.api.schemas import CheckpointOut, ErrorOut

router = APIRouter(prefix="/v1/jobs/{job_id}", tags=["artifacts"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                              429: {"model": ErrorOut}})
BINARY = {200: {"content": {"application/octet-stream": {}}}}
CHUNK = 1 << 20


def file_response(handle: BinaryIO, filename: str) -> StreamingResponse:
    """Stream an open file (see :meth:`Storage.open_checkpoint`: a file the worker prunes
    mid-download is still sent whole), closed when sent or when the client goes away."""
    def chunks():
        with handle:
            while block := handle.read(CHUNK):
                yield block

    headers = {"content-length": str(os.fstat(handle.fileno()).st_size),
               "content-disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(chunks(), media_type="application/octet-stream",
                             headers=headers, background=BackgroundTask(handle.close))


@router.get("/model", response_class=StreamingResponse, responses=BINARY)
def model(job_id: JobIdDep, tenant: TenantDep, producer: ProducerDep,
          storage: StorageDep) -> StreamingResponse:
    """The trained model as a ``.keras`` file."""
    service.require_job(producer, tenant, job_id)
    return file_response(storage.open_final_model(job_id), f"{job_id}.keras")


@router.get("/checkpoints", response_model=list[CheckpointOut])
def checkpoints(job_id: JobIdDep, tenant: TenantDep, producer: ProducerDep,
                storage: StorageDep) -> list[CheckpointOut]:
    """The job's checkpoint files."""
    service.require_job(producer, tenant, job_id)
    return [CheckpointOut(**item) for item in storage.list_checkpoints(job_id)]


@router.get("/checkpoints/{name}", response_class=StreamingResponse, responses=BINARY)
def checkpoint(job_id: JobIdDep, name: Annotated[str, Path(max_length=200)],
               tenant: TenantDep, producer: ProducerDep,
               storage: StorageDep) -> StreamingResponse:
    """One checkpoint file by name (as listed)."""
    service.require_job(producer, tenant, job_id)
    return file_response(storage.open_checkpoint(job_id, name), name)

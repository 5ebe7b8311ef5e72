"""Datasets: streamed upload (raw .npz or HDF5 body) and metadata."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from lamina_service import service
from lamina_service.api.deps import ProducerDep, StorageDep, TenantDep
from lamina_service.api.schemas import DatasetOut, ErrorOut

router = APIRouter(prefix="/v1/datasets", tags=["datasets"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                              429: {"model": ErrorOut},
                              413: {"model": ErrorOut}, 422: {"model": ErrorOut},
                              503: {"model": ErrorOut}, 507: {"model": ErrorOut}})

UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("", status_code=201, response_model=DatasetOut, openapi_extra=UPLOAD_BODY)
async def upload(request: Request, tenant: TenantDep, producer: ProducerDep,
                 storage: StorageDep,
                 format: Literal["npz", "h5"] | None = Query(None)) -> DatasetOut:  # noqa: B008
    """Upload an .npz (arrays x, y or x_<name>/y_<name>) or HDF5 file as the raw body.

    The same bytes always get the same id. A full disk answers 507, a failing one
    503 (nothing is stored or registered; retry later).
    """
    return await service.upload_dataset(producer, storage, tenant, request.stream(), format)


@router.get("/{dataset_id}", response_model=DatasetOut)
def get(dataset_id: Annotated[str, Path(max_length=200)], tenant: TenantDep,
        producer: ProducerDep) -> DatasetOut:
    """Metadata of one of the caller's datasets."""
    return service.get_dataset(producer, tenant, dataset_id)

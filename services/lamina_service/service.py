"""Use cases the routes call: each is one call from a route (routes stay thin)."""

from __future__ import annotations

from dataclasses import asdict

from lamina_service import metrics
from lamina_service.api.schemas import (
    DatasetOut,
    JobCreate,
    JobCreated,
    JobOut,
    JobPage,
    ModelCostOut,
)
from lamina_service.config import Settings
from lamina_service.errors import LimitExceeded, NotFound
from lamina_service.queue import JobRecord, JobStatus, Producer
from lamina_service.queue.follow import Follower
from lamina_service.storage import Storage
from lamina_service.validation import validate_model


def _limit(value: int, limit: int, name: str, field: str) -> None:
    if value > limit:
        raise LimitExceeded(f"{field}={value} is over the limit {name}={limit}", field=field)


def submit_job(producer: Producer, settings: Settings, tenant: str, body: JobCreate) -> JobCreated:
    """Check limits, datasets and the model, then queue the job.

    Raises:
        LimitExceeded: epochs, batch size, replicas or model size over the limits.
        NotFound: a dataset id the tenant did not upload.
        InvalidInput: the model config is refused.
        TooManyRequests: the tenant has ``quotas.max_queued_jobs`` jobs queued.
    """
    limits = settings.limits
    _limit(body.fit.epochs, limits.max_epochs, "max_epochs", "fit.epochs")
    _limit(body.fit.batch_size, limits.max_batch_size, "max_batch_size", "fit.batch_size")
    _limit(body.replicas, limits.max_replicas, "max_replicas", "replicas")
    for field, dataset_id in (("dataset_id", body.dataset_id),
                              ("fit.validation_dataset_id", body.fit.validation_dataset_id),
                              ("fit.initial_weights_id", body.fit.initial_weights_id)):
        if dataset_id is not None and producer.dataset(tenant, dataset_id) is None:
            raise NotFound(f"no such dataset: {dataset_id[:80]!r}", field=field)
    cost = validate_model(body.model, limits, body.fit.batch_size)
    spec = body.model_dump(mode="json", exclude={"idempotency_key"})
    submission = producer.submit(tenant, spec, dataset_id=body.dataset_id, name=body.name,
                                 idempotency_key=body.idempotency_key,
                                 priority=body.priority, replicas=body.replicas)
    if submission.created:
        metrics.JOBS_SUBMITTED.inc()
    return JobCreated(id=submission.id, status=submission.status, created=submission.created,
                      cost=ModelCostOut(**asdict(cost)))


def job_out(record: JobRecord, with_spec: bool = True) -> JobOut:
    """The public view of a job record."""
    return JobOut(
        id=record.id, name=record.name, status=record.status, priority=record.priority,
        dataset_id=record.dataset_id,
        attempts=record.attempts, epoch=record.epoch, history=record.history,
        error=record.error, cancel_requested=record.cancel_requested, worker=record.worker,
        has_model=record.artifact_id is not None, final_logs=record.final_logs,
        submitted_at=record.submitted_at, started_at=record.started_at,
        finished_at=record.finished_at, spec=record.spec if with_spec else None,
    )


async def get_job(follower: Follower, tenant: str, job_id: str) -> JobOut:
    """One job of ``tenant``.

    Raises:
        NotFound: no such job for this tenant.
    """
    record = await follower.get(tenant, job_id)
    if record is None:
        raise NotFound(f"no such job: {job_id!r}", field="job_id")
    return job_out(record)


async def list_jobs(follower: Follower, tenant: str, status: JobStatus | None, offset: int,
                    limit: int) -> JobPage:
    """A page of ``tenant``'s jobs, newest first, without their specs."""
    page = await follower.list_jobs(tenant, status, offset, limit)
    return JobPage(items=[job_out(r, with_spec=False) for r in page.items],
                   next_offset=page.next_offset)


def cancel_job(producer: Producer, tenant: str, job_id: str) -> JobOut:
    """Cancel (queued) or request cancellation (running) of a job of ``tenant``."""
    record = producer.cancel(tenant, job_id)
    if record is None:
        raise NotFound(f"no such job: {job_id!r}", field="job_id")
    return job_out(record)


def require_job(producer: Producer, tenant: str, job_id: str) -> JobStatus:
    """The job's status; NotFound when ``tenant`` cannot see it."""
    status = producer.status(tenant, job_id)
    if status is None:
        raise NotFound(f"no such job: {job_id!r}", field="job_id")
    return status


async def upload_dataset(producer: Producer, storage: Storage, tenant: str, chunks,
                         fmt: str | None) -> DatasetOut:
    """Store an upload and record that ``tenant`` owns it."""
    info = await storage.ingest_dataset(chunks, fmt)
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(producer.add_dataset, tenant, info.id, info.to_dict())
    return DatasetOut(**info.to_dict())


def get_dataset(producer: Producer, tenant: str, dataset_id: str) -> DatasetOut:
    """Metadata of a dataset ``tenant`` uploaded."""
    meta = producer.dataset(tenant, dataset_id)
    if meta is None:
        raise NotFound(f"no such dataset: {dataset_id[:80]!r}", field="dataset_id")
    return DatasetOut(**meta)


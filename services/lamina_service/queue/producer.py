"""API side of the queue: submit, read, list, cancel and follow jobs.

Every method takes the caller's tenant; a job of another tenant behaves exactly
like a job that does not exist (``None`` / ``False``), so routes answer 404.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from lamina_service.config import Settings
from lamina_service.errors import TooManyRequests
from lamina_service.queue import keys
from lamina_service.queue._redis import Scripts
from lamina_service.queue.models import TERMINAL, JobRecord, JobStatus

#: Seconds a client is asked to wait (``Retry-After``) while Redis is out of memory.
OUT_OF_MEMORY_RETRY_AFTER = 5


def is_out_of_memory(exc: BaseException) -> bool:
    """True when Redis refused a write because ``maxmemory`` is reached (noeviction).

    A plain command raises ``redis.exceptions.OutOfMemoryError``; a Lua script refused at
    its first write raises a generic ``ResponseError`` that quotes the ``-OOM`` reply
    (Redis 6; Redis 7 passes the ``OOM`` code through). Redis checks memory only before a
    script's first write and never stops a script that has written, so a refused script
    (:data:`~lamina_service.queue.scripts.SUBMIT` included) has changed nothing.
    """
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return True
    return isinstance(exc, redis.ResponseError) and "OOM command not allowed" in str(exc)


def new_job_id() -> str:
    """Return a fresh opaque job id (``j_`` + 24 hex digits)."""
    return "j_" + secrets.token_hex(12)


@dataclass(frozen=True)
class Submission:
    """Result of :meth:`Producer.submit`.

    Attributes:
        id: the job id.
        status: its status now.
        created: False when an idempotency key matched an earlier job.
    """

    id: str
    status: JobStatus
    created: bool


@dataclass(frozen=True)
class Event:
    """One entry of a job's event stream.

    Attributes:
        id: stream entry id, used as the SSE ``id`` and ``Last-Event-ID``.
        type: ``state``, ``batch`` or ``epoch``.
        data: the event payload.
    """

    id: str
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Page:
    """A page of jobs, newest first; ``next_offset`` is None on the last page."""

    items: list[JobRecord]
    next_offset: int | None
    total: int | None = None  # ids in the listed index (expired ones not yet dropped count)


#: Fields of a job hash a listing reads (not the spec, which can be large).
LIST_FIELDS = ("id", "tenant", "name", "status", "priority", "dataset_id", "attempts", "epoch",
               "error", "cancel_requested", "worker", "artifact_id", "final_logs",
               "submitted_at", "started_at", "finished_at", "updated_at")


def make_page(ids: list[str], records: list[list[str | None]], offset: int,
              limit: int, total: int | None = None) -> tuple[Page, list[str]]:
    """A page from ``limit + 1`` ids (the extra one tells that more follow) and the
    ``HMGET`` of :data:`LIST_FIELDS` of the first ``limit``; also the ids whose records
    expired."""
    items, gone = [], []
    for job_id, values in zip(ids[:limit], records):
        if values[0] is None:
            gone.append(job_id)
            continue
        fields = {k: v for k, v in zip(LIST_FIELDS, values) if v is not None}
        items.append(JobRecord.from_redis(fields))
    return Page(items=items, next_offset=offset + limit if len(ids) > limit else None,
                total=total), gone


class Producer:
    """Submit and observe jobs.

    Args:
        client: ``redis.Redis(..., decode_responses=True)``.
        settings: the process settings.
    """

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._scripts = Scripts(client, settings)

    def submit(
        self,
        tenant: str,
        spec: dict[str, Any],
        *,
        dataset_id: str,
        name: str | None = None,
        idempotency_key: str | None = None,
        priority: str = "normal",
        replicas: int = 1,
    ) -> Submission:
        """Store a job record and dispatch it to the workers, atomically.

        Args:
            tenant: owner.
            spec: the validated job spec (JSON-serialisable).
            dataset_id: training data id (already checked to belong to ``tenant``).
            name: optional label.
            idempotency_key: a repeated key within its TTL returns the first job.
            priority: ``high``, ``normal`` or ``low`` (claim order, see the consumer).
            replicas: Ray replicas the job will hold while running (tenant quota).

        Returns:
            The job id and status, and whether it was created now.

        Raises:
            TooManyRequests: the tenant has ``quotas.max_queued_jobs`` jobs queued.
            redis.ResponseError: Redis is out of memory (:func:`is_out_of_memory`); nothing
                was written, and a retry with the same idempotency key is safe.
        """
        if priority not in keys.PRIORITIES:
            raise ValueError(f"priority must be one of {keys.PRIORITIES}; "
                             f"received priority={priority!r}")
        digest = ""
        if idempotency_key:
            digest = keys.idempotency_key(tenant, idempotency_key).rsplit(":", 1)[-1]
        max_queued = self.settings.quotas.max_queued_jobs
        job_id, created, status = self._scripts.run(
            "SUBMIT", new_job_id(), tenant, digest, self.settings.idempotency_ttl_seconds,
            name or "", dataset_id, json.dumps(spec, separators=(",", ":")), priority,
            int(replicas), max_queued,
        )
        if created == -1:
            raise TooManyRequests(
                f"tenant has {status} jobs queued; the limit quotas.max_queued_jobs is "
                f"{max_queued}", limit="max_queued_jobs", retry_after=30)
        return Submission(id=job_id, status=JobStatus(status), created=bool(created))

    def get(self, tenant: str, job_id: str) -> JobRecord | None:
        """Return the job, or None when it does not exist or belongs to another tenant."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.job_key(job_id))
        pipe.hgetall(keys.job_history_key(job_id))
        fields, history = pipe.execute()
        if not fields or fields.get("tenant") != tenant:
            return None
        return JobRecord.from_redis(fields, history)

    def status(self, tenant: str, job_id: str) -> JobStatus | None:
        """Return only the job's status (cheap), None when not visible to ``tenant``."""
        tenant_of, status = self.client.hmget(keys.job_key(job_id), "tenant", "status")
        if tenant_of != tenant or status is None:
            return None
        return JobStatus(status)

    def list_jobs(
        self,
        tenant: str,
        status: JobStatus | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page:
        """List a tenant's jobs, newest first, optionally of one status.

        Jobs whose records expired are dropped from the index as they are met. The
        records come without their spec, read by one script (one round trip, one reply);
        ``Page.total`` is how many jobs the index holds.
        """
        index = keys.tenant_jobs_key(tenant, status.value if status else None)
        reply = json.loads(self._scripts.run("LIST", tenant, status.value if status else "",
                                             offset, limit, *LIST_FIELDS))
        # cjson encodes an empty table as {}
        page, gone = make_page(reply["ids"] or [], reply["records"] or [], offset, limit,
                               reply["total"])
        if gone:
            self.client.zrem(index, *gone)
        return page

    def cancel(self, tenant: str, job_id: str) -> JobRecord | None:
        """Cancel a queued job now, or ask a running one to stop at its next batch.

        Returns:
            The job after the request, or None when not visible to ``tenant``.
            Cancelling a finished job changes nothing.
        """
        if self._scripts.run("CANCEL", job_id, tenant) == "missing":
            return None
        return self.get(tenant, job_id)

    def events(
        self, tenant: str, job_id: str, after: str = "0-0", block_ms: int | None = None
    ) -> list[Event] | None:
        """Return the job's events after stream id ``after``.

        Args:
            tenant: caller.
            job_id: the job.
            after: last event id seen (``0-0`` for all retained events).
            block_ms: wait up to this long for a first new event (None: do not wait).

        Returns:
            The events in order, or None when the job is not visible to ``tenant``.
        """
        if self.client.hget(keys.job_key(job_id), "tenant") != tenant:
            return None
        reply = self.client.xread(
            {keys.job_events_key(job_id): after}, count=500, block=block_ms
        )
        out = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                out.append(Event(entry_id, fields["type"], json.loads(fields["data"])))
        return out

    def counts(self) -> dict[JobStatus, int]:
        """Number of jobs per state; finished ones older than the job TTL are pruned."""
        horizon = time.time() - self.settings.job_ttl_seconds
        pipe = self.client.pipeline(transaction=False)
        for status in TERMINAL:
            pipe.zremrangebyscore(keys.status_index_key(status.value), "-inf", horizon)
        for status in JobStatus:
            pipe.zcard(keys.status_index_key(status.value))
        replies = pipe.execute()[len(TERMINAL):]
        return dict(zip(JobStatus, replies))

    def add_dataset(self, tenant: str, dataset_id: str, meta: dict[str, Any]) -> None:
        """Record that ``tenant`` owns (uploaded) dataset ``dataset_id``.

        Until this write succeeds the stored file is not the tenant's (reads and job
        submissions answer 404), so a refused write (Redis out of memory) leaves
        nothing reachable; the stored file, named by its content, may already be
        another tenant's and is kept for the retry.
        """
        self.client.hset(keys.tenant_datasets_key(tenant), dataset_id, json.dumps(meta))

    def dataset(self, tenant: str, dataset_id: str) -> dict[str, Any] | None:
        """Metadata of a dataset ``tenant`` uploaded, else None."""
        raw = self.client.hget(keys.tenant_datasets_key(tenant), dataset_id)
        return json.loads(raw) if raw else None

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self.client.ping())

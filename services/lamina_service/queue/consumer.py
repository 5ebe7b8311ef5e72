"""Worker side of the queue: claim jobs, keep their lease, report, and finish them.

Delivery is at-least-once (a claimed job holds a lease that a heartbeat renews;
an expired lease hands the job to the next claim); effects are exactly-once
because every attempt gets a fencing token and every write an attempt makes is a
Lua script that first checks the token.

Order of claims (one atomic script, ``CLAIM``): jobs whose lease expired first;
then by priority (``high`` before ``normal`` before ``low``); within a priority,
round-robin over tenants (each tenant's jobs in submission order), so a tenant's
backlog cannot starve another tenant's single job. A tenant whose running jobs
hold ``settings.quotas.max_running_replicas`` replicas is passed over until some
finish. Typical worker loop::

    from lamina_service.config import Settings
    from lamina_service.queue import Consumer
    from lamina_service.redis_client import connect

    consumer = Consumer(connect(url), settings, "w1")
    while (job := consumer.claim(block_ms=5000)) is not None:
        # job.spec (dict), job.dataset_ids, job.attempt (1-based), job.token
        ...each batch:   consumer.publish_event(job, "batch", {"batch": i, "loss": l})
                         if consumer.is_cancel_requested(job): consumer.mark_cancelled(job)
        ...every few s:  if not consumer.heartbeat(job): stop (fenced out / lease lost)
        ...each epoch:   consumer.record_epoch(job, epoch, logs)
        consumer.commit(job, artifact_id, final_logs)   # False: fenced out, discard
        # or consumer.fail(job, "message", retry=True/False)
        # or, on SIGTERM, consumer.requeue(job)  (the attempt is not counted)

Every method raises ``redis.ConnectionError`` / ``redis.TimeoutError`` when Redis
stays unreachable through the client's retry policy (:mod:`lamina_service.redis_client`);
riding out an outage is the caller's choice (the worker's loop waits, see
:mod:`lamina_worker.loop`). Every write is a fenced script, so repeating one after
an outage is safe.

API (all methods are safe to call from one thread per Consumer):

``Consumer(client, settings, worker_id)``
    ``client`` is ``redis.Redis(..., decode_responses=True)``.
``claim(block_ms=5000) -> ClaimedJob | None``
    First reclaims a job whose lease (``settings.lease_seconds``) expired, else
    takes the next queued job in the order above, waiting up to ``block_ms`` for
    one (woken by new submissions). Cancelled, finished and dead-lettered jobs are
    skipped. A job already tried ``settings.max_attempts`` times is marked
    failed with its last error instead of being returned.
``heartbeat(job) -> bool``
    Renews the lease (call well within ``lease_seconds``). False: another attempt
    owns the job now; stop working on it without writing anything.
``is_cancel_requested(job) -> bool``
    The client asked to cancel; stop at the end of this batch and call
    ``mark_cancelled``.
``publish_event(job, type, data) -> bool``
    Appends ``{type, data}`` to the job's event stream (types: ``state``,
    ``batch``, ``epoch``). False when fenced out.
``record_epoch(job, epoch, logs) -> bool``
    Stores ``logs`` (metric -> float) as epoch ``epoch`` (0-based) of the history,
    sets the job's current epoch and publishes an ``epoch`` event. Re-recording an
    epoch after a resume overwrites it. False when fenced out.
``commit(job, artifact_id, final_logs) -> bool``
    Marks the job succeeded with its final model id. False when fenced out: the
    caller must not treat its result as the job's.
``fail(job, error, retry) -> JobStatus | None``
    Records ``error``. With ``retry=True`` and attempts left the job is queued again
    (returns QUEUED), else it is failed (FAILED; CANCELLED if a cancel was pending).
    None when fenced out.
``requeue(job, reason="shutdown") -> bool``
    Gives the job back (e.g. on SIGTERM) without counting the attempt.
``mark_cancelled(job) -> bool``
    Acknowledges a cancel request: the job ends as cancelled.

Storage paths for a job: :func:`lamina_service.storage.Storage.checkpoint_dir`,
``model_path`` and ``load_dataset``.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis

from lamina.client import protocol
from lamina_service.config import Settings
from lamina_service.queue import keys
from lamina_service.queue._redis import Scripts
from lamina_service.queue.models import JobStatus

EVENT_TYPES = frozenset(protocol.EVENT_TYPES)


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker holds for one attempt.

    Attributes:
        id: job id.
        spec: the job spec as submitted (``model``, ``compile``, ``fit``,
            ``callbacks``, ``dataset_id``, ``replicas``, ...).
        attempt: 1-based attempt number (a resumed job has attempt > 1).
        token: fencing token of this attempt.
        tenant: owner of the job.
        dataset_ids: training dataset first, then the validation dataset if any.
        message_id: the dispatch number of this attempt (1 at submit, +1 per requeue).
        submitted_at: Unix time of submission.
    """

    id: str
    spec: dict[str, Any]
    attempt: int
    token: int
    tenant: str
    dataset_ids: tuple[str, ...] = field(default_factory=tuple)
    message_id: str = ""
    submitted_at: float = 0.0


def _jsonable(logs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in logs.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[str(name)] = number if math.isfinite(number) else None
    return out


class Consumer:
    """Claims and finishes jobs for one worker (see the module docstring).

    Args:
        client: ``redis.Redis(..., decode_responses=True)``.
        settings: supplies ``lease_seconds`` and ``max_attempts``.
        worker_id: this worker's consumer name in the group (unique per process).
    """

    def __init__(self, client: redis.Redis, settings: Settings, worker_id: str) -> None:
        self.client = client
        self.settings = settings
        self.worker_id = worker_id
        self._scripts = Scripts(client, settings)

    def claim(self, block_ms: int = 5000) -> ClaimedJob | None:
        """Return the next job to run (see the module docstring); None after ``block_ms``."""
        deadline = time.monotonic() + max(0, block_ms) / 1000
        while True:
            # A fresh nonce per call: the client library's retry of a call whose reply
            # was lost re-sends the same one and gets the same job back.
            reply = self._scripts.run(
                "CLAIM", self.worker_id, self.settings.max_attempts,
                self.settings.lease_seconds, self.settings.quotas.max_running_replicas,
                uuid.uuid4().hex,
            )
            if reply[0] == "run":
                return self._job(reply)
            if reply[0] == "again":
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # A submission pushes a wake token; the timeout bounds how late an expired
            # lease (which pushes none) is noticed.
            self.client.blpop([keys.WAKE], timeout=max(0.01, min(remaining, 1.0)))

    @staticmethod
    def _job(reply: list) -> ClaimedJob:
        _, attempt, token, spec, dataset_id, tenant, submitted_at, job_id, dispatch = reply
        spec_dict = json.loads(spec)
        dataset_ids = [dataset_id]
        validation = (spec_dict.get("fit") or {}).get("validation_dataset_id")
        if validation:
            dataset_ids.append(validation)
        return ClaimedJob(
            id=job_id, spec=spec_dict, attempt=int(attempt), token=int(token),
            tenant=tenant, dataset_ids=tuple(dataset_ids), message_id=str(dispatch),
            submitted_at=float(submitted_at),
        )

    def heartbeat(self, job: ClaimedJob) -> bool:
        """Renew this attempt's lease; False when it no longer owns the job."""
        return bool(self._scripts.run(
            "HEARTBEAT", job.id, job.token, self.worker_id, self.settings.lease_seconds
        ))

    def is_cancel_requested(self, job: ClaimedJob) -> bool:
        """True when the client asked to cancel this job."""
        return self.client.hget(keys.job_key(job.id), "cancel_requested") == "1"

    def publish_event(self, job: ClaimedJob, type: str, data: dict[str, Any],
                      seq: int | None = None) -> bool:
        """Append an event to the job's stream; False when fenced out.

        ``seq`` numbers the attempt's progress writes (1, 2, ... across events and
        epochs): a write whose number the attempt has made already is not made again,
        so retrying a write whose reply was lost (Redis went down after running it)
        does not duplicate it.

        Raises:
            ValueError: ``type`` is not one of state, batch, epoch.
        """
        if type not in EVENT_TYPES:
            raise ValueError(f"event type must be one of {sorted(EVENT_TYPES)}; received {type!r}")
        return bool(self._scripts.run("EVENT", job.id, job.token, type, json.dumps(data),
                                      "" if seq is None else int(seq)))

    def record_epoch(self, job: ClaimedJob, epoch: int, logs: dict[str, Any],
                     perf: dict[str, Any] | None = None, seq: int | None = None) -> bool:
        """Store one epoch's logs in the history and publish it; False when fenced out.

        ``perf`` (measured ``samples_per_second``, ``allreduce_share``) goes into the
        epoch event only: the history keeps Keras's logs. ``seq``: as in
        :meth:`publish_event`.
        """
        clean = _jsonable(logs)
        event = json.dumps({"epoch": int(epoch), "logs": clean, **_jsonable(perf or {})})
        return bool(self._scripts.run(
            "EPOCH", job.id, job.token, int(epoch), json.dumps(clean), event,
            "" if seq is None else int(seq)))

    def commit(self, job: ClaimedJob, artifact_id: str, final_logs: dict[str, Any]) -> bool:
        """Mark the job succeeded; False when this attempt was fenced out."""
        return bool(self._scripts.run(
            "COMMIT", job.id, job.token, artifact_id, json.dumps(_jsonable(final_logs))
        ))

    def fail(self, job: ClaimedJob, error: str, retry: bool) -> JobStatus | None:
        """Record a failure; requeue when ``retry`` and attempts remain.

        Returns:
            The job's new status, or None when this attempt was fenced out.
        """
        reply = self._scripts.run(
            "FAIL", job.id, job.token, str(error)[:4000], "1" if retry else "0",
            self.settings.max_attempts,
        )
        return None if reply == 0 else JobStatus(reply)

    def requeue(self, job: ClaimedJob, reason: str = "shutdown") -> bool:
        """Give the job back to the queue without counting this attempt."""
        return bool(self._scripts.run("REQUEUE", job.id, job.token, reason))

    def mark_cancelled(self, job: ClaimedJob) -> bool:
        """End the job as cancelled (after a cancel request); False when fenced out."""
        return bool(self._scripts.run("CANCELLED", job.id, job.token))

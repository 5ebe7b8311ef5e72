"""The queue's record types: job states and the job record read back from Redis."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from lamina.client.protocol import JOB_STATUSES, TERMINAL_STATUSES


class JobStatus(str, Enum):
    """Life cycle: queued -> running -> succeeded | failed | cancelled.

    A running job goes back to queued when its worker is lost (lease expiry),
    stops on SIGTERM (requeue) or fails with a retryable error.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for succeeded, failed and cancelled."""
        return self in TERMINAL


if tuple(s.value for s in JobStatus) != JOB_STATUSES:  # one definition: the protocol's
    raise RuntimeError(f"JobStatus {[s.value for s in JobStatus]} differs from "
                       f"lamina.client.protocol.JOB_STATUSES {JOB_STATUSES}")
TERMINAL = frozenset(JobStatus(s) for s in TERMINAL_STATUSES)


class JobRecord(BaseModel):
    """One job as stored in its Redis hash, with its per-epoch history.

    Attributes:
        id: opaque job id (``j_`` + 24 hex digits).
        tenant: owner; never shown to other tenants.
        name: client-chosen label.
        status: current state.
        priority: ``high``, ``normal`` or ``low``.
        dataset_id: training data.
        spec: the validated job spec (model, compile, fit, callbacks, ...).
        attempts: claims so far (a requeue on SIGTERM does not count).
        epoch: last finished epoch index (0-based), ``None`` before the first.
        history: ``History.history``-style dict: metric -> list per epoch.
        error: the last error (kept when a retry succeeds, for diagnosis).
        cancel_requested: a cancel was asked while the job was running.
        worker: id of the worker of the current/last attempt.
        artifact_id: id of the final model once succeeded.
        final_logs: the logs of the last epoch at commit.
        submitted_at, started_at, finished_at, updated_at: Unix times.
    """

    id: str
    tenant: str
    name: str | None = None
    status: JobStatus
    priority: str = "normal"
    dataset_id: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    epoch: int | None = None
    history: dict[str, list[float | None]] = Field(default_factory=dict)
    error: str | None = None
    cancel_requested: bool = False
    worker: str | None = None
    artifact_id: str | None = None
    final_logs: dict[str, Any] | None = None
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None

    @classmethod
    def from_redis(
        cls, fields: dict[str, str], history: dict[str, str] | None = None
    ) -> JobRecord:
        """Build a record from ``HGETALL`` of the job hash and of its history hash."""

        def opt(name: str) -> str | None:
            value = fields.get(name)
            return value if value not in (None, "") else None

        def opt_float(name: str) -> float | None:
            value = opt(name)
            return float(value) if value is not None else None

        epochs = sorted(((int(k), json.loads(v)) for k, v in (history or {}).items()))
        curves: dict[str, list[float | None]] = {}
        for position, (_, logs) in enumerate(epochs):
            for metric in logs:
                curves.setdefault(metric, [None] * position)
            for metric, values in curves.items():
                values.append(logs.get(metric))
        epoch = opt("epoch")
        final_logs = opt("final_logs")
        return cls(
            id=fields["id"],
            tenant=fields["tenant"],
            name=opt("name"),
            status=JobStatus(fields["status"]),
            priority=fields.get("priority") or "normal",
            dataset_id=opt("dataset_id"),
            spec=json.loads(fields.get("spec") or "{}"),
            attempts=int(fields.get("attempts") or 0),
            epoch=int(epoch) if epoch is not None else None,
            history={k: curves[k] for k in sorted(curves)},
            error=opt("error"),
            cancel_requested=fields.get("cancel_requested") == "1",
            worker=opt("worker"),
            artifact_id=opt("artifact_id"),
            final_logs=json.loads(final_logs) if final_logs else None,
            submitted_at=float(fields["submitted_at"]),
            started_at=opt_float("started_at"),
            finished_at=opt_float("finished_at"),
            updated_at=opt_float("updated_at"),
        )

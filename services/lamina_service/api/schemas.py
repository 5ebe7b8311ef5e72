"""Public request and response schemas (pydantic, unknown fields refused)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lamina_service.jobspec import (  # noqa: F401 - re-exported: one job schema
    Callback,
    CompileConfig,
    CSVLogger,
    CSVLoggerConfig,
    EarlyStopping,
    EarlyStoppingConfig,
    EmptyConfig,
    ExponentialSchedule,
    FitConfig,
    JobCreate,
    LearningRateScheduler,
    LearningRateSchedulerConfig,
    Mode,
    ModelCheckpoint,
    ModelCheckpointConfig,
    Monitor,
    Name,
    OptimizerConfig,
    PiecewiseSchedule,
    Priority,
    ReduceLROnPlateau,
    ReduceLROnPlateauConfig,
    StepSchedule,
    Strict,
    TerminateOnNaN,
)
from lamina_service.queue.models import JobStatus


class ModelCostOut(Strict):
    params: int
    bytes: int
    layers: int
    flops_per_step: int
    exact: bool


class JobCreated(Strict):
    """Answer of ``POST /v1/jobs``."""

    id: str
    status: JobStatus
    created: bool = True
    cost: ModelCostOut | None = None


class JobOut(Strict):
    """A job as the client sees it."""

    id: str
    name: str | None
    status: JobStatus
    priority: Priority = "normal"
    dataset_id: str | None
    attempts: int
    epoch: int | None
    history: dict[str, list[float | None]]
    error: str | None
    cancel_requested: bool
    worker: str | None
    has_model: bool
    final_logs: dict[str, Any] | None
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    spec: dict[str, Any] | None = None


class JobPage(Strict):
    """A page of jobs, newest first."""

    items: list[JobOut]
    next_offset: int | None


class DatasetOut(Strict):
    """A stored dataset."""

    id: str
    format: str
    bytes: int
    arrays: dict[str, dict[str, Any]]
    samples: int


class CheckpointOut(Strict):
    name: str
    bytes: int
    modified: float


class ErrorBody(Strict):
    code: str
    message: str
    field: str | None = None
    limit: str | None = Field(None, description="On a 429: the setting that refused it.")


class ErrorOut(Strict):
    """Every error answer: ``{"error": {"code", "message", "field"}}``."""

    error: ErrorBody

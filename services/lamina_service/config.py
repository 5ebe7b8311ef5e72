"""One typed settings class for the API process, read from ``LAMINA_*`` variables.

Never built at import time: call :func:`get_settings` (cached) or build a
:class:`Settings` explicitly and pass it to ``create_app(settings)``.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger("lamina_service")


class Limits(BaseModel):
    """Hard caps checked before a job is queued or an upload is stored.

    ``parse_*`` bound the child process that parses an uploaded dataset
    (:mod:`lamina_service.sandbox`): address space, CPU seconds and wall-clock time.
    """

    max_params: int = Field(50_000_000, gt=0)
    max_model_bytes: int = Field(512 * 2**20, gt=0)
    max_layers: int = Field(500, gt=0)
    max_epochs: int = Field(10_000, gt=0)
    max_batch_size: int = Field(65_536, gt=0)
    max_replicas: int = Field(16, gt=0)
    max_body_bytes: int = Field(2 * 2**20, gt=0)
    max_upload_bytes: int = Field(1 * 2**30, gt=0)
    max_array_bytes: int = Field(4 * 2**30, gt=0)
    parse_memory_bytes: int = Field(1 * 2**30, gt=0)
    parse_cpu_seconds: int = Field(20, gt=0)
    parse_timeout_seconds: float = Field(60.0, gt=0)


class Quotas(BaseModel):
    """Per-tenant shares and per-process caps (0 turns a per-tenant quota off).

    Attributes:
        max_streams: open event streams on one API process (all tenants).
        max_streams_per_tenant: open event streams of one tenant on one API process.
        max_queued_jobs: jobs one tenant may have queued at once (checked at submit).
        max_running_replicas: replicas one tenant's running jobs may hold at once
            (checked by workers when they claim; the tenant's next job waits).
        rate_per_second: sustained requests per second per tenant (token bucket).
        rate_burst: bucket size: requests a tenant may send at once after a pause.
    """

    max_streams: int = Field(2000, gt=0)
    max_streams_per_tenant: int = Field(200, gt=0)
    max_queued_jobs: int = Field(10_000, ge=0)
    max_running_replicas: int = Field(0, ge=0)
    rate_per_second: float = Field(500.0, ge=0)
    rate_burst: int = Field(1000, ge=0)


class Settings(BaseSettings):
    """Configuration of the control plane.

    Environment variables use the ``LAMINA_`` prefix, e.g. ``LAMINA_REDIS_URL``,
    ``LAMINA_STORAGE`` (or ``LAMINA_STORAGE_ROOT``), ``LAMINA_API_KEYS``
    (``key1:tenantA,key2:tenantB`` or a JSON object), ``LAMINA_LIMITS__MAX_PARAMS``.

    Attributes:
        redis_url: where the queue and job records live.
        storage_root: directory holding datasets, checkpoints and models.
        api_keys: bearer key -> tenant name. Empty means auth is off (embedded mode).
        auth_disabled: force auth off even when keys are set (embedded mode).
        limits: caps on models, jobs and request sizes.
        lease_seconds: a claimed job whose worker has not heartbeated for this long
            is reclaimed by another worker.
        max_attempts: attempts (claims) before a job is dead-lettered as failed.
        job_ttl_seconds: how long finished jobs, their events and history are kept.
        idempotency_ttl_seconds: how long an idempotency key maps to its job.
        events_maxlen: approximate cap on each job's event stream.
        sse_poll_ms: how long an event stream waits on Redis for news; a quiet stream
            sends a keep-alive comment this often.
        quotas: per-tenant shares (queued jobs, running replicas, request rate) and
            per-process caps on open event streams.
        replica_placement: where a worker puts a job's replicas (Ray placement
            group): ``pack`` on the worker's own node (shared-memory all-reduce) or
            ``spread`` one per node of its Ray cluster (ring all-reduce over TCP);
            see :mod:`lamina_worker.placement`.
    """

    model_config = SettingsConfigDict(
        env_prefix="LAMINA_", env_nested_delimiter="__", extra="ignore"
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    storage_root: str = Field(
        "./lamina-storage",
        validation_alias=AliasChoices(
            "storage_root", "LAMINA_STORAGE", "LAMINA_STORAGE_ROOT"
        ),
    )
    api_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    auth_disabled: bool = False
    limits: Limits = Field(default_factory=Limits)
    lease_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(3, gt=0)
    job_ttl_seconds: int = Field(7 * 24 * 3600, gt=0)
    idempotency_ttl_seconds: int = Field(24 * 3600, gt=0)
    events_maxlen: int = Field(10_000, gt=0)
    sse_poll_ms: int = Field(15_000, gt=0)
    quotas: Quotas = Field(default_factory=Quotas)
    replica_placement: Literal["pack", "spread"] = "pack"

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return {}
        if text.startswith("{"):
            return json.loads(text)
        keys: dict[str, str] = {}
        for item in text.split(","):
            key, sep, tenant = item.strip().rpartition(":")
            if not sep or not key or not tenant:
                raise ValueError(
                    "LAMINA_API_KEYS must be 'key:tenant,key:tenant' or a JSON object; "
                    f"received an item without ':' ({len(item)} characters)"
                )
            keys[key] = tenant
        return keys

    @property
    def auth_enabled(self) -> bool:
        """True when requests must carry a bearer API key."""
        return bool(self.api_keys) and not self.auth_disabled

    def warn_if_open(self) -> None:
        """Log loudly when the API accepts requests without a key."""
        if not self.auth_enabled:
            log.warning(
                "AUTH IS OFF (embedded mode): every request is served as tenant 'local'. "
                "Set LAMINA_API_KEYS=key:tenant,... before exposing this API."
            )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings, read from the environment once."""
    return Settings()

"""Dependencies of the routes, as ``Annotated`` aliases (one place)."""

from __future__ import annotations

import hmac
from typing import Annotated

import redis
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from lamina_service.api.streams import StreamSlots
from lamina_service.config import Settings, get_settings
from lamina_service.errors import TooManyRequests, Unauthorized
from lamina_service.queue import Producer
from lamina_service.queue.follow import Follower
from lamina_service.queue.ratelimit import RateLimiter
from lamina_service.storage import JOB_ID, Storage, check_id

LOCAL_TENANT = "local"


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _redis(request: Request) -> redis.Redis:
    return request.app.state.redis


async def _producer(request: Request) -> Producer:
    return request.app.state.producer


async def _storage(request: Request) -> Storage:
    return request.app.state.storage


async def _metrics(request: Request) -> CollectorRegistry:
    return request.app.state.metrics


async def _follower(request: Request) -> Follower:
    return request.app.state.follower


async def _stream_slots(request: Request) -> StreamSlots:
    return request.app.state.stream_slots


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[redis.Redis, Depends(_redis)]
ProducerDep = Annotated[Producer, Depends(_producer)]
StorageDep = Annotated[Storage, Depends(_storage)]
MetricsDep = Annotated[CollectorRegistry, Depends(_metrics)]
FollowerDep = Annotated[Follower, Depends(_follower)]
StreamSlotsDep = Annotated[StreamSlots, Depends(_stream_slots)]


# Declared as a dependency so the OpenAPI schema states the bearer scheme; the checks are ours.
_bearer = HTTPBearer(auto_error=False, description="An API key from LAMINA_API_KEYS.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_tenant(settings: SettingsDep, credentials: BearerDep) -> str:
    """The tenant of the bearer API key (``local`` when auth is off).

    Every configured key is compared in constant time, so timing reveals nothing.

    Raises:
        Unauthorized: no bearer key, or an unknown one.
    """
    if not settings.auth_enabled:
        return LOCAL_TENANT
    if credentials is None:
        raise Unauthorized("send 'Authorization: Bearer <api key>'", field="authorization")
    token = credentials.credentials.strip()
    found = None
    for key, tenant in settings.api_keys.items():
        if hmac.compare_digest(key.encode(), token.encode()):
            found = tenant
    if found is None:
        raise Unauthorized("unknown API key", field="authorization")
    return found


async def _rate_limiter(request: Request) -> RateLimiter:
    return request.app.state.rate_limiter


async def limited_tenant(tenant: Annotated[str, Depends(current_tenant)],
                         limiter: Annotated[RateLimiter, Depends(_rate_limiter)]) -> str:
    """The caller's tenant, after spending one token of its request rate limit.

    Raises:
        TooManyRequests: the tenant's bucket is empty (``quotas.rate_per_second``).
    """
    wait = await limiter.take(tenant)
    if wait > 0:
        raise TooManyRequests(
            f"tenant sends requests faster than the limit quotas.rate_per_second="
            f"{limiter.rate:g} (burst {limiter.burst})", limit="rate_per_second",
            retry_after=wait)
    return tenant


async def job_id_param(job_id: Annotated[str, Path(max_length=200)]) -> str:
    """The ``{job_id}`` path parameter, 404 unless it is a well-formed job id."""
    return check_id(job_id, JOB_ID, "job_id")


TenantDep = Annotated[str, Depends(limited_tenant)]
JobIdDep = Annotated[str, Depends(job_id_param)]

__all__ = ["FollowerDep", "JobIdDep", "MetricsDep", "ProducerDep", "RedisDep", "SettingsDep",
           "StorageDep", "StreamSlotsDep", "TenantDep", "get_settings"]

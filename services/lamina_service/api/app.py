"""The FastAPI application factory."""

from __future__ import annotations

from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from lamina_service import metrics
from lamina_service.api import errors
from lamina_service.api.middleware import BodyLimitMiddleware, MetricsMiddleware
from lamina_service.api.routes import artifacts, dashboard, datasets, events, health, jobs, web
from lamina_service.api.streams import StreamSlots
from lamina_service.config import Settings, get_settings
from lamina_service.diskio import sweep_temps
from lamina_service.queue import Producer
from lamina_service.queue.follow import Follower
from lamina_service.queue.ratelimit import RateLimiter
from lamina_service.redis_client import connect, connect_async
from lamina_service.storage import Storage


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: configuration; by default :func:`get_settings` (the environment).

    Returns:
        The application, with its Redis client, producer and storage in ``app.state``.
    """
    settings = settings or get_settings()
    settings.warn_if_open()
    client = connect(settings.redis_url)

    def async_client(kind: str) -> aioredis.Redis:
        # Event streams block in XREAD for sse_poll_ms: their socket timeout is longer, and
        # their pool holds one connection per open stream. Short reads share a bounded pool
        # and wait for a free connection. A pooled connection that Redis closed (restart)
        # is retried on a fresh one (the retry policy of redis_client).
        stream = kind == "stream"
        if stream:
            return connect_async(settings.redis_url, blocking=False,
                                 max_connections=settings.quotas.max_streams + 8,
                                 socket_timeout=settings.sse_poll_ms / 1000 + 10)
        return connect_async(settings.redis_url, blocking=True, max_connections=64)

    follower = Follower(async_client)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        client.close()
        await follower.aclose()

    app = FastAPI(title="Lamina training service", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.redis = client
    app.state.producer = Producer(client, settings)
    app.state.follower = follower
    app.state.rate_limiter = RateLimiter(follower, settings.quotas)
    app.state.stream_slots = StreamSlots(settings.quotas.max_streams,
                                         settings.quotas.max_streams_per_tenant)
    app.state.metrics = metrics.scrape_registry(app.state.producer.counts)
    app.state.storage = Storage(settings.storage_root, settings.limits.max_upload_bytes,
                                settings.limits.max_array_bytes, sandbox=settings.limits)
    sweep_temps(app.state.storage.root)  # temp files of writers killed before this start
    errors.install(app)
    for module in (jobs, datasets, events, artifacts, health, web, dashboard):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, default=settings.limits.max_body_bytes,
                       overrides={"/v1/datasets": settings.limits.max_upload_bytes})
    app.add_middleware(MetricsMiddleware)
    return app

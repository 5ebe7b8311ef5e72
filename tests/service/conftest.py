"""Fixtures for the control-plane tests: settings, a Redis client, producer/consumer."""

from __future__ import annotations

import pytest
import redis
from lamina_service.config import Limits, Settings


@pytest.fixture
def settings(redis_url, tmp_path):
    """Settings on the test Redis and a fresh storage root; auth on with two tenants."""
    return Settings(
        redis_url=redis_url,
        storage_root=str(tmp_path / "storage"),
        api_keys={"key-a": "alice", "key-b": "bob"},
        lease_seconds=0.2,
        max_attempts=3,
        sse_poll_ms=100,
        limits=Limits(max_params=1_000_000, max_body_bytes=256 * 1024,
                      max_upload_bytes=4 * 2**20),
    )


@pytest.fixture
def rclient(redis_url):
    """A decoding Redis client on the test server."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def producer(rclient, settings):
    from lamina_service.queue import Producer

    return Producer(rclient, settings)


@pytest.fixture
def make_consumer(rclient, settings):
    from lamina_service.queue import Consumer

    def make(worker_id: str = "w1", **overrides):
        return Consumer(rclient, settings.model_copy(update=overrides), worker_id)

    return make

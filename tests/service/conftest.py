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
        # the product's lease: a test that claims a job and claims again must not see it
        # reclaimed because a loaded machine held the test off the CPU for 0.2 s (the
        # lease tests in test_queue_consumer.py give their claims SHORT_LEASE)
        lease_seconds=30.0,
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


# --- API fixtures -----------------------------------------------------------------

AUTH_A = {"Authorization": "Bearer key-a"}
AUTH_B = {"Authorization": "Bearer key-b"}


def seq_model(units: int = 4, input_dim: int = 3, extra_layers: list | None = None) -> dict:
    """A Keras 3 Sequential config: Input(input_dim) -> Dense(units) -> Dense(1)."""
    def dense(name, n):
        return {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
                "config": {"name": name, "units": n, "activation": "relu", "use_bias": True}}
    layers = [{"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
               "config": {"name": "input", "batch_shape": [None, input_dim],
                          "dtype": "float32"}},
              dense("hidden", units), *(extra_layers or []), dense("out", 1)]
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "seq", "layers": layers}}


def npz_bytes(n: int = 16, **arrays) -> bytes:
    """An .npz with x (n, 3) float32 and y (n, 1) unless arrays are given."""
    import io

    import numpy as np

    arrays = arrays or {"x": np.arange(n * 3, dtype=np.float32).reshape(n, 3),
                        "y": np.ones((n, 1), dtype=np.float32)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def job_body(dataset_id: str, **overrides) -> dict:
    body = {"model": seq_model(), "compile": {"optimizer": "adam", "loss": "mse",
                                              "metrics": ["mae"]},
            "fit": {"epochs": 2, "batch_size": 4}, "dataset_id": dataset_id, "name": "t"}
    body.update(overrides)
    return body


@pytest.fixture
def app(settings):
    from lamina_service.api import create_app

    return create_app(settings)


@pytest.fixture
def client(app):
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings():  # starlette asks for httpx2; httpx works the same here
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def dataset_id(client):
    """A dataset uploaded by tenant A."""
    reply = client.post("/v1/datasets", content=npz_bytes(), headers=AUTH_A)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port in a thread."""

    def __init__(self, app) -> None:
        import threading

        import uvicorn

        from lamina_service.redis_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=5))  # as lamina_service.__main__ runs it
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app):
    with LiveServer(app) as server:
        yield server

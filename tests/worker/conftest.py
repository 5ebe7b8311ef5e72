"""Worker test kit: real Redis, real local Ray, real storage in tmp_path.

Jobs are submitted through the service's own use case (``submit_job``: the API's
validation and the producer); workers run in-process (``Worker(burst=True)``)
or as real processes (``python -m lamina_worker``) joined to the session's Ray.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(str(ROOT / p) for p in ("sdk", "services", "worker"))
TENANT = "local"


def mlp_config(inputs=20, classes=3, hidden=32, dropout=0.0) -> dict:
    import lamina
    from lamina import layers

    stack = [layers.Input((inputs,)), layers.Dense(hidden, activation="relu")]
    if dropout:
        stack.append(layers.Dropout(dropout))
    model = lamina.Sequential([*stack, layers.Dense(classes, activation="softmax")])
    return json.loads(model.to_json())


def cnn_config(classes=3) -> dict:
    import lamina
    from lamina import layers

    model = lamina.Sequential([
        layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
        layers.MaxPooling2D(), layers.Flatten(), layers.Dense(classes, activation="softmax")])
    return json.loads(model.to_json())


def blobs(n=240, features=20, classes=3, seed=0, noise=1.0):
    """Separable-ish classes: a class mean plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = rng.normal(size=(classes, features)) * 1.5
    x = centers[y] + rng.normal(size=(n, features)) * noise
    return x.astype(np.float32), y.astype(np.int64)


def assert_weights_close(actual, expected, rtol=1e-5, atol=1e-6):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


class Kit:
    """Submit jobs, run workers, compute local references (see the module docstring)."""

    mlp_config = staticmethod(mlp_config)
    cnn_config = staticmethod(cnn_config)
    blobs = staticmethod(blobs)
    assert_close = staticmethod(assert_weights_close)

    def __init__(self, settings, ray_address: str, tmp_path: Path) -> None:
        import redis

        from lamina_service.queue import Producer
        from lamina_service.storage import Storage

        self.settings = settings
        self.ray_address = ray_address
        self.tmp_path = tmp_path
        self.client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        self.producer = Producer(self.client, settings)
        limits = settings.limits
        self.storage = Storage(settings.storage_root, limits.max_upload_bytes,
                               limits.max_array_bytes)

    # -- data and jobs ----------------------------------------------------------------
    def dataset(self, x, y) -> str:
        buffer = io.BytesIO()
        np.savez(buffer, x=x, y=y)

        async def chunks():
            yield buffer.getvalue()

        info = asyncio.run(self.storage.ingest_dataset(chunks(), "npz"))
        self.producer.add_dataset(TENANT, info.id, info.to_dict())
        return info.id

    def spec(self, model, x, y, *, epochs=3, batch_size=32, seed=7, replicas=2,
             optimizer=None, callbacks=(), validation_split=0.0, metrics=("accuracy",),
             loss="sparse_categorical_crossentropy") -> dict:
        return {
            "model": model, "dataset_id": self.dataset(x, y), "replicas": replicas,
            "compile": {"optimizer": optimizer or {"class_name": "Adam",
                                                   "config": {"learning_rate": 0.01}},
                        "loss": loss, "metrics": list(metrics)},
            "fit": {"epochs": epochs, "batch_size": batch_size, "seed": seed,
                    "validation_split": validation_split},
            "callbacks": list(callbacks),
        }

    def submit(self, spec: dict) -> str:
        from lamina_service.api.schemas import JobCreate
        from lamina_service.service import submit_job

        return submit_job(self.producer, self.settings, TENANT, JobCreate(**spec)).id

    def job(self, job_id: str):
        return self.producer.get(TENANT, job_id)

    def events(self, job_id: str) -> list:
        from lamina_service.queue import keys

        return [(f["type"], json.loads(f["data"]))
                for _, f in self.client.xrange(keys.job_events_key(job_id))]

    # -- workers ----------------------------------------------------------------------
    def worker(self, **kwargs):
        from lamina_worker.loop import Worker

        kwargs.setdefault("replica_cpus", 0.5)
        kwargs.setdefault("burst", True)
        kwargs.setdefault("block_ms", 200)
        return Worker(self.settings, **kwargs)

    def spawn(self, *args: str, log_name="worker.log") -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=PYTHONPATH,
                   LAMINA_REDIS_URL=self.settings.redis_url,
                   LAMINA_STORAGE=str(self.settings.storage_root),
                   LAMINA_LEASE_SECONDS=str(self.settings.lease_seconds),
                   LAMINA_MAX_ATTEMPTS=str(self.settings.max_attempts))
        log = open(self.tmp_path / log_name, "ab")  # noqa: SIM115 - closed by the test's end
        return subprocess.Popen(
            [sys.executable, "-m", "lamina_worker", "--ray-address", self.ray_address,
             "--replica-cpus", "0.5", "--block-ms", "200", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))

    def wait(self, predicate, timeout=120.0, every=0.05, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    # -- results ----------------------------------------------------------------------
    def final_weights(self, job_id: str) -> list:
        from lamina.models import load_model

        model = load_model(str(self.storage.final_model(job_id)), compile=False)
        return [np.array(w.data) for w in model.weights]

    def reference(self, spec: dict, x, y, extra_callbacks=()):
        """Local ``fit`` of the same spec: the same seed, data and global batch."""
        import lamina
        from lamina.models import model_from_config
        from lamina_worker.spec import build_callbacks, compile_config

        lamina.utils.set_random_seed(spec["fit"]["seed"])
        model = model_from_config(spec["model"], safe_mode=True)
        model.compile(**compile_config(spec))
        folder = self.tmp_path / f"reference-{time.monotonic_ns()}"
        folder.mkdir()
        fit = spec["fit"]
        history = model.fit(x, y, batch_size=fit["batch_size"], epochs=fit["epochs"],
                            validation_split=fit.get("validation_split") or 0.0,
                            callbacks=build_callbacks(spec, folder) + list(extra_callbacks),
                            verbose=0)
        return [np.array(w.data) for w in model.weights], history


@pytest.fixture
def kit(redis_url, ray_local, tmp_path):
    from lamina_service.config import Settings

    settings = Settings(redis_url=redis_url, storage_root=str(tmp_path / "storage"),
                        lease_seconds=2.0, max_attempts=3)
    kit = Kit(settings, ray_local.get_runtime_context().gcs_address, tmp_path)
    yield kit
    kit.client.close()


"""Fixtures for the SDK client: the real API over HTTP and a queue-driven trainer.

``QueueTrainer`` plays the worker's part with real components: it claims jobs through
``lamina_service.queue.Consumer``, trains them with local ``lamina`` ``fit``, publishes
batch and epoch events, writes the final ``.keras`` file to storage and commits.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

API_KEY = "key-sdk"


class LiveServer:
    """uvicorn serving the API on a loopback port in a thread; restartable on that port."""

    def __init__(self, settings, port: int | None = None) -> None:
        from lamina_service.redis_server import free_port

        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None
        self.thread = None
        self.app = None

    def start(self) -> LiveServer:
        import uvicorn

        from lamina_service.api import create_app

        self.app = create_app(self.settings)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=0.1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True  # open SSE connections are cut after 0.1 s
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


class QueueTrainer:
    """Claims one job through the real Consumer and trains it with local ``fit``."""

    def __init__(self, settings, batch_delay: float = 0.0, fail_with: str | None = None,
                 hold_at_epoch: int | None = None):
        self.settings = settings
        self.batch_delay = batch_delay
        self.fail_with = fail_with
        # at the start of epoch ``hold_at_epoch`` the trainer sets ``held`` and waits for
        # ``release``: a test acts while the job is certainly running, however slow the
        # machine
        self.hold_at_epoch = hold_at_epoch
        self.held, self.release = threading.Event(), threading.Event()
        self.model = None
        self.job_id = None
        self.error = None
        self.claimed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> QueueTrainer:
        import lamina  # noqa: F401  (imported here: two threads importing it at once race)

        self.thread.start()
        return self

    def join(self, timeout: float = 60) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the trainer did not finish"
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            self._train()
        except Exception as exc:  # surfaced by join()
            self.error = exc

    def _train(self) -> None:
        import redis

        import lamina
        from lamina.callbacks import Callback
        from lamina_service.queue import Consumer
        from lamina_service.storage import Storage

        client = redis.Redis.from_url(self.settings.redis_url, decode_responses=True)
        consumer = Consumer(client, self.settings, "sdk-test-worker")
        job = None
        deadline = time.monotonic() + 30
        while job is None:
            assert time.monotonic() < deadline, "no job was queued"
            job = consumer.claim(block_ms=200)
        self.job_id = job.id
        self.claimed.set()
        if self.fail_with:
            consumer.fail(job, self.fail_with, retry=False)
            client.close()
            return
        storage = Storage(self.settings.storage_root, 2**30, 2**30)
        data = storage.load_dataset(job.dataset_ids[0])
        spec = job.spec
        model = lamina.models.model_from_config(spec["model"])
        compile_spec = dict(spec["compile"])
        optimizer = compile_spec.pop("optimizer")
        if isinstance(optimizer, dict):
            optimizer = lamina.optimizers.get(optimizer)
        model.compile(optimizer=optimizer, **compile_spec)
        fit = spec["fit"]
        steps = -(-int(len(data["x"]) * (1 - fit["validation_split"])) // fit["batch_size"])
        trainer = self

        class Report(Callback):
            def on_train_batch_end(self, batch, logs=None):
                time.sleep(trainer.batch_delay)
                consumer.publish_event(job, "batch", {"epoch": self.epoch, "batch": batch + 1,
                                                      "steps": steps, "logs": logs or {}})
                if consumer.is_cancel_requested(job):
                    self.model.stop_training = True

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
                if epoch == trainer.hold_at_epoch:
                    trainer.held.set()
                    assert trainer.release.wait(60), "the trainer was never released"

            def on_epoch_end(self, epoch, logs=None):
                consumer.record_epoch(job, epoch, logs or {})

        if fit.get("seed") is not None:
            lamina.utils.set_random_seed(fit["seed"])
        model.fit(data["x"], data["y"], batch_size=fit["batch_size"], epochs=fit["epochs"],
                  validation_split=fit["validation_split"], shuffle=fit["shuffle"],
                  callbacks=[Report()], verbose=0)
        if consumer.is_cancel_requested(job):
            consumer.mark_cancelled(job)
        else:
            model.save(str(storage.model_path(job.id)))
            self.model = model
            consumer.commit(job, job.id, {})
        client.close()


@pytest.fixture
def api_settings(redis_url, tmp_path):
    from lamina_service.config import Settings

    return Settings(redis_url=redis_url, storage_root=str(tmp_path / "storage"),
                    api_keys={API_KEY: "sdk"}, lease_seconds=30, sse_poll_ms=100)


@pytest.fixture
def api(api_settings):
    server = LiveServer(api_settings).start()
    yield server
    server.stop()


@pytest.fixture
def client(api):
    import lamina

    with lamina.Client(api.url, api_key=API_KEY, timeout=10, retries=8) as sdk_client:
        yield sdk_client


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")
    return x, y


@pytest.fixture
def compiled_model():
    import lamina

    model = lamina.Sequential([lamina.Input(shape=(3,)), lamina.layers.Dense(8, activation="relu"),
                               lamina.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model

"""Workers and the API ride out a Redis restart (SIGKILL, 5 s down, restart on the same
port and AOF data): a worker starting, idle or busy keeps running, reports the outage
once (log line, ``lamina_redis_up``, ``lamina_redis_outages_total``) and goes on by
itself; a busy job whose lease outlives the outage finishes in its first attempt
with every epoch in its history. The API answers 503 JSON meanwhile and recovers
without a restart. A Redis at maxmemory (writes refused) is waited out the same way;
the progress buffer keeps epoch records and counts dropped batch events. Real
redis-server, real worker processes on the session's Ray, real uvicorn.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lamina_service.redis_server import free_port
from tests.worker.conftest import PYTHONPATH, ROOT, Kit

OUTAGE_SECONDS = 5.0
LEASE_SECONDS = 15.0  # longer than the outage: the busy job keeps its first attempt
UNREACHABLE = "is unavailable ("
RECOVERED = "is reachable again"
SCRAPE_DEADLINE = 30.0  # a value that is due: retried until then, not read once


@pytest.fixture
def kit(aof_redis, ray_local, tmp_path):
    from lamina_service.config import Settings

    settings = Settings(redis_url=aof_redis.url, storage_root=str(tmp_path / "storage"),
                        lease_seconds=LEASE_SECONDS, max_attempts=3)
    kit = Kit(settings, ray_local.get_runtime_context().gcs_address, tmp_path)
    yield kit
    kit.client.close()


class WorkerProcess:
    """``python -m lamina_worker`` with a metrics port; stopped (SIGTERM) at the end."""

    def __init__(self, kit: Kit, name: str = "chaos-w1") -> None:
        self.kit = kit
        self.name = name
        self.metrics_port = free_port()
        self.log_path = kit.tmp_path / f"{name}.log"
        self.process = kit.spawn("--metrics-port", str(self.metrics_port),
                                 "--worker-id", name, log_name=f"{name}.log")

    def metrics(self) -> dict[str, float] | None:
        """Unlabelled samples of the worker's /metrics (None if it does not answer)."""
        try:
            reply = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2)
        except httpx.TransportError:
            return None
        return {sample.name: sample.value
                for family in text_string_to_metric_families(reply.text)
                for sample in family.samples if not sample.labels}

    def metric(self, name: str) -> float | None:
        samples = self.metrics()
        return None if samples is None else samples.get(name)

    def read_metric(self, name: str, timeout: float = SCRAPE_DEADLINE) -> float:
        """``name``'s value, scraping again until /metrics answers with it (one 2 s
        scrape of a busy worker on a loaded machine can time out)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.metric(name)
            if value is not None:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}'s /metrics gave no {name} within "
                                     f"{timeout:.0f}s")
            time.sleep(0.2)

    def expect_metric(self, name: str, expected: float,
                      timeout: float = SCRAPE_DEADLINE) -> None:
        """Wait until ``name`` reads ``expected`` (an unanswered scrape is retried, and
        a gauge may trail the log line that announces its change)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.metric(name)
            if value == expected:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}'s {name} was not {expected} within "
                                     f"{timeout:.0f}s; last read: {value}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.process.poll() is None, \
            f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def worker(kit):
    process = WorkerProcess(kit)
    yield process
    process.stop()


def small_job(kit: Kit, epochs: int, n: int, seed: int = 3, replicas: int = 1) -> dict:
    x, y = kit.blobs(n, 20, seed=seed)
    return kit.spec(kit.mlp_config(hidden=16), x, y, epochs=epochs, batch_size=32,
                    replicas=replicas, seed=seed)


def assert_complete(kit: Kit, job_id: str, epochs: int) -> None:
    """Succeeded in its first attempt; every epoch in the history and the event stream."""
    record = kit.job(job_id)
    assert record.status.value == "succeeded", record.error
    assert record.attempts == 1
    assert record.error is None
    for name, values in record.history.items():
        assert len(values) == epochs and None not in values, (name, values)
    epoch_events = [d["epoch"] for kind, d in kit.events(job_id) if kind == "epoch"]
    assert epoch_events == list(range(epochs))


def outage_reported_once(worker: WorkerProcess) -> None:
    text = worker.log()
    assert text.count(UNREACHABLE) == 1, text[-3000:]
    assert text.count(RECOVERED) == 1, text[-3000:]
    worker.expect_metric("lamina_redis_up", 1)  # set after the recovery's log line
    worker.expect_metric("lamina_redis_outages_total", 1)


def test_worker_started_while_redis_is_down_waits_and_then_runs_jobs(kit, aof_redis):
    aof_redis.kill()
    down_at = time.monotonic()
    worker = WorkerProcess(kit)
    try:
        kit.wait(lambda: worker.metric("lamina_redis_outages_total") == 1, timeout=90,
                 every=0.2, what="the starting worker to find Redis down")
        worker.assert_alive()
        worker.expect_metric("lamina_redis_up", 0)
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
        aof_redis.start()
        job_id = kit.submit(small_job(kit, epochs=2, n=256))
        kit.wait(lambda: kit.job(job_id).status.terminal, timeout=120, every=0.2,
                 what="the job to finish")
        assert_complete(kit, job_id, epochs=2)
        worker.assert_alive()
        outage_reported_once(worker)
    finally:
        worker.stop()


def npz(x: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    return buffer.getvalue()


@pytest.fixture
def api(kit):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, LAMINA_REDIS_URL=kit.settings.redis_url,
               LAMINA_STORAGE=str(kit.settings.storage_root), LAMINA_AUTH_DISABLED="true",
               LAMINA_API_KEYS="")
    with open(kit.tmp_path / "api.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lamina_service", "--port", str(port)], env=env,
            stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def ready():
        assert process.poll() is None, (kit.tmp_path / "api.log").read_text()
        try:
            return http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        kit.wait(ready, timeout=60, every=0.2, what="the API to be ready")
        yield http, process
    finally:
        http.close()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_idle_worker_and_api_ride_out_a_redis_restart(kit, aof_redis, worker, api):
    http, api_process = api
    kit.wait(lambda: worker.metric("lamina_redis_up") == 1, timeout=90, every=0.2,
             what="the worker's first claim")
    aof_redis.kill()
    down_at = time.monotonic()
    try:
        jobs = http.get("/v1/jobs")
        assert jobs.status_code == 503, jobs.text
        assert jobs.json()["error"]["code"] == "unavailable"
        assert jobs.headers["retry-after"]
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "unavailable"
        assert http.get("/healthz").json() == {"status": "ok"}
        kit.wait(lambda: worker.metric("lamina_redis_up") == 0, timeout=30, every=0.2,
                 what="the idle worker to notice the outage")
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
        worker.assert_alive()
        assert api_process.poll() is None
    finally:
        aof_redis.start()
    kit.wait(lambda: http.get("/readyz").status_code == 200, timeout=30, every=0.2,
             what="the API to be ready again")
    assert http.get("/v1/jobs").status_code == 200
    x, y = kit.blobs(256, 20, seed=5)
    dataset = http.post("/v1/datasets", params={"format": "npz"}, content=npz(x, y))
    assert dataset.status_code == 201, dataset.text
    spec = small_job(kit, epochs=2, n=64)
    spec["dataset_id"] = dataset.json()["id"]
    created = http.post("/v1/jobs", json=spec)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    kit.wait(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded",
             timeout=120, every=0.2, what="the job submitted after the restart")
    assert_complete(kit, job_id, epochs=2)
    worker.assert_alive()
    outage_reported_once(worker)
    assert api_process.poll() is None


def test_busy_job_trains_through_the_outage_in_its_first_attempt(kit, aof_redis, worker):
    # ~12 s of training on a quiet machine (270 steps/s), a minute on a busy one: the
    # outage falls in its middle.
    epochs, n = 40, 2560
    steps_per_epoch = n // 32
    job_id = kit.submit(small_job(kit, epochs=epochs, n=n, replicas=2))
    kit.wait(lambda: (kit.job(job_id).epoch or -1) >= 1, timeout=120, every=0.1,
             what="two epochs before the outage")
    before = worker.read_metric("lamina_train_steps_total")
    aof_redis.kill()
    down_at = time.monotonic()
    try:
        kit.wait(lambda: worker.metric("lamina_redis_up") == 0, timeout=30, every=0.2,
                 what="the busy worker to notice the outage")
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
        during = worker.read_metric("lamina_train_steps_total")  # while Redis is down
        worker.assert_alive()
    finally:
        aof_redis.start()
    # At least one epoch ended while Redis was down: its record was buffered.
    assert during - before >= steps_per_epoch, (before, during)
    kit.wait(lambda: kit.job(job_id).status.terminal, timeout=180, every=0.2,
             what="the busy job to finish")
    assert_complete(kit, job_id, epochs)
    worker.assert_alive()
    outage_reported_once(worker)
    assert "abandoned" not in worker.log()


def test_outbox_keeps_history_in_order_and_counts_dropped_batch_events(kit, aof_redis):
    """The Progress callback's buffer against a real Redis killed and restarted: epoch
    records are kept, batch events beyond the bound are dropped and counted, the rest is
    written in order once Redis answers."""
    from lamina_service.queue import Consumer
    from lamina_service.redis_client import RedisHealth, connect
    from lamina_worker import metrics
    from lamina_worker.callbacks import Outbox

    job_id = kit.submit(small_job(kit, epochs=2, n=64))
    consumer = Consumer(connect(aof_redis.url), kit.settings, "outbox-test")
    try:
        job = consumer.claim(block_ms=2000)
        assert job is not None and job.id == job_id
        changes: list[bool] = []
        outbox = Outbox(consumer, job, RedisHealth(on_change=changes.append), max_batches=2)
        outbox.event("batch", {"epoch": 0, "batch": 1})
        assert not outbox.pending
        dropped = metrics.REGISTRY.get_sample_value("lamina_worker_events_dropped_total")
        aof_redis.kill()
        outbox.event("batch", {"epoch": 0, "batch": 2})
        outbox.epoch(0, {"loss": 1.0})
        outbox.event("batch", {"epoch": 1, "batch": 1})
        outbox.event("batch", {"epoch": 1, "batch": 2})  # a third one: over the bound
        outbox.epoch(1, {"loss": 0.5})
        assert len(outbox.pending) == 4 and outbox.dropped == 1
        assert metrics.REGISTRY.get_sample_value(
            "lamina_worker_events_dropped_total") == dropped + 1
        assert changes == [True, False]
        aof_redis.start()
        outbox.drain()
        assert changes == [True, False, True] and not outbox.pending
    finally:
        consumer.client.close()
    written = [(kind, data.get("epoch"), data.get("batch")) for kind, data in kit.events(job_id)
               if kind in ("batch", "epoch")]
    assert written == [("batch", 0, 1), ("batch", 0, 2), ("epoch", 0, None),
                       ("batch", 1, 1), ("epoch", 1, None)]
    assert kit.job(job_id).history == {"loss": [1.0, 0.5]}


def test_worker_waits_while_redis_refuses_writes_at_maxmemory(kit):
    """Redis full (maxmemory, noeviction): the claim still runs (its first write is a pop,
    which Redis allows), then the attempt's heartbeats, events, epoch records and commit
    are refused. The worker stays up, reports one outage, holds the history and commits
    the first attempt, complete, once memory frees."""
    import redis

    job_id = kit.submit(small_job(kit, epochs=2, n=256))
    used = int(kit.client.info("memory")["used_memory"])
    kit.client.config_set("maxmemory", str(used // 2))
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            kit.client.set("probe", "x")
        worker = WorkerProcess(kit)
        try:
            kit.wait(lambda: worker.metric("lamina_redis_outages_total") == 1, timeout=90,
                     every=0.2, what="the worker's writes to be refused")
            worker.expect_metric("lamina_redis_up", 0)
            time.sleep(2.0)  # the attempt goes on; its writes wait
            worker.assert_alive()
            record = kit.job(job_id)
            assert record.status.value == "running" and record.history == {}
        finally:
            kit.client.config_set("maxmemory", "0")
        kit.wait(lambda: kit.job(job_id).status.terminal, timeout=120, every=0.2,
                 what="the job to finish once memory freed")
        assert_complete(kit, job_id, epochs=2)
        worker.assert_alive()
        outage_reported_once(worker)
    finally:
        kit.client.config_set("maxmemory", "0")
        if "worker" in locals():
            worker.stop()


def test_outage_longer_than_the_lease_fencing_decides_and_no_epoch_is_lost(kit, aof_redis):
    """Two workers, a 3 s lease, Redis down for 5 s while one trains: afterwards either
    the busy worker renews first (attempt 1 goes on) or the idle one reclaims the
    expired job (the first is fenced out, the job resumes from a checkpoint). Either
    way: one success, every epoch in the history (a checkpoint never got ahead of the
    buffered history), both workers still up."""
    kit.settings.lease_seconds = 3.0
    epochs, n = 40, 2560
    job_id = kit.submit(small_job(kit, epochs=epochs, n=n))
    workers = [WorkerProcess(kit, "chaos-a"), WorkerProcess(kit, "chaos-b")]
    try:
        kit.wait(lambda: (kit.job(job_id).epoch or -1) >= 1, timeout=120, every=0.1,
                 what="two epochs before the outage")
        aof_redis.kill()
        try:
            time.sleep(OUTAGE_SECONDS)
            for worker in workers:
                worker.assert_alive()
        finally:
            aof_redis.start()
        kit.wait(lambda: kit.job(job_id).status.terminal, timeout=180, every=0.2,
                 what="the job to finish")
        record = kit.job(job_id)
        assert record.status.value == "succeeded", record.error
        assert record.attempts in (1, 2)
        for name, values in record.history.items():
            assert len(values) == epochs and None not in values, (name, values)
        epoch_events = {d["epoch"] for kind, d in kit.events(job_id) if kind == "epoch"}
        assert epoch_events == set(range(epochs))
        for worker in workers:
            worker.assert_alive()
            assert worker.log().count(UNREACHABLE) == 1, worker.log()[-3000:]
        outcomes = " ".join(w.log() for w in workers)
        assert outcomes.count(f"job {job_id} attempt {record.attempts}: succeeded") == 1
        if record.attempts == 2:
            assert f"job {job_id} attempt 1: fenced" in outcomes
    finally:
        for worker in workers:
            worker.stop()

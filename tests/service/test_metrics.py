"""``/metrics``: job gauges read from Redis at scrape time, request metrics, Redis down."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import AUTH_A, job_body

STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def make_client(app):
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings():  # as in conftest's client fixture
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient
    return TestClient(app)



def scrape(client) -> dict[tuple[str, tuple], float]:
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples}


def job_gauges(samples) -> dict[str, float]:
    out = {state: samples[("lamina_jobs", (("state", state),))] for state in STATES}
    out["depth"] = samples[("lamina_queue_depth", ())]
    out["redis_up"] = samples[("lamina_redis_up", ())]
    return out


def test_job_gauges_follow_every_transition_at_scrape_time(client, dataset_id, make_consumer):
    """Workers change states behind the API's back; each scrape still reads them right."""
    consumer = make_consumer("w-metrics")
    ids = [client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A).json()["id"]
           for _ in range(6)]
    zero = dict.fromkeys(STATES, 0)
    steps = [
        ("submitted", lambda: None, {**zero, "queued": 6, "depth": 6}),
        ("claimed 3", lambda: [jobs.append(consumer.claim(block_ms=100)) for _ in range(3)],
         {**zero, "queued": 3, "running": 3, "depth": 3}),
        ("committed", lambda: consumer.commit(jobs[0], jobs[0].id, {}),
         {**zero, "queued": 3, "running": 2, "succeeded": 1, "depth": 3}),
        ("failed, retry", lambda: consumer.fail(jobs[1], "oom", retry=True),
         {**zero, "queued": 4, "running": 1, "succeeded": 1, "depth": 4}),
        ("failed for good", lambda: consumer.fail(jobs[2], "bad", retry=False),
         {**zero, "queued": 4, "succeeded": 1, "failed": 1, "depth": 4}),
        ("cancelled queued", lambda: client.post(f"/v1/jobs/{ids[5]}/cancel", headers=AUTH_A),
         {**zero, "queued": 3, "succeeded": 1, "failed": 1, "cancelled": 1, "depth": 3}),
    ]
    jobs: list = []
    for name, act, expected in steps:
        act()
        assert job_gauges(scrape(client)) == {**expected, "redis_up": 1}, name


def test_two_apps_on_one_redis_report_the_same_gauges(client, settings, dataset_id):
    """A second API replica (second app in this process) sees the first one's jobs."""
    from lamina_service.api import create_app

    client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A)
    with make_client(create_app(settings)) as other:
        assert job_gauges(scrape(other)) == job_gauges(scrape(client))
        assert job_gauges(scrape(other))["queued"] == 1


def test_request_metrics_use_route_templates(client, dataset_id):
    client.get("/v1/jobs/j_0123456789abcdef01234567", headers=AUTH_A)
    samples = scrape(client)
    key = ("lamina_http_requests_total",
           (("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "404")))
    assert samples[key] >= 1
    assert samples[("lamina_jobs_submitted_total", ())] >= 0
    assert not any("j_0123" in str(labels) for _, labels in samples)


def test_scrape_succeeds_while_redis_is_down(settings):
    from lamina_service.api import create_app
    from lamina_service.redis_server import free_port

    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with make_client(create_app(down)) as client:
        assert client.get("/readyz").status_code == 503
        samples = scrape(client)
    assert samples[("lamina_redis_up", ())] == 0
    assert not any(name in {"lamina_jobs", "lamina_queue_depth"} for name, _ in samples)
    assert any(name == "lamina_http_requests_total" for name, _ in samples)


@pytest.mark.slow
@pytest.mark.parametrize("command", [["-m", "lamina_service"], ["-m", "lamina.cli", "api"]],
                         ids=["module", "lamina-api"])
def test_several_api_processes_merge_their_metrics(redis_url, tmp_path, command):
    """``python -m lamina_service --workers 2`` and ``lamina api --workers 2``: any
    process's /metrics counts every request served by either (Prometheus multiprocess
    mode)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from lamina_service.redis_server import free_port

    root = Path(__file__).resolve().parents[2]
    port, shared = free_port(), tmp_path / "prom"
    shared.mkdir()
    env = {**os.environ, "LAMINA_REDIS_URL": redis_url, "LAMINA_STORAGE": str(tmp_path / "s"),
           "LAMINA_API_KEYS": "key-a:alice", "PROMETHEUS_MULTIPROC_DIR": str(shared),
           "PYTHONPATH": os.pathsep.join(str(root / p) for p in ("sdk", "services"))}
    api = subprocess.Popen([sys.executable, *command, "--port", str(port),
                            "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert api.poll() is None and time.monotonic() < deadline, "API did not start"
            time.sleep(0.2)
        pids = {f.stem.rsplit("_", 1)[-1] for f in shared.glob("counter_*.db")}
        assert wait_for(lambda: len({f.stem.rsplit("_", 1)[-1]
                                     for f in shared.glob("counter_*.db")}) >= 2), pids
        for _ in range(40):  # a new connection each: both processes accept some
            assert httpx.get(f"{url}/v1/jobs", headers=AUTH_A).status_code == 200
        key = ("lamina_http_requests_total",
               (("method", "GET"), ("route", "/v1/jobs"), ("status", "200")))
        # A request is counted after its answer went out: the 40th may still be counting
        # when the client has it, so wait for the count before every scrape must agree.
        assert wait_for(lambda: scrape_url(f"{url}/metrics").get(key, 0) >= 40), \
            scrape_url(f"{url}/metrics").get(key)
        for _ in range(4):
            samples = scrape_url(f"{url}/metrics")
            assert samples[key] == 40
            assert samples[("lamina_jobs", (("state", "queued"),))] == 0
    finally:
        api.terminate()
        api.wait(timeout=20)





def wait_for(predicate, timeout: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def scrape_url(url: str) -> dict[tuple[str, tuple], float]:
    import httpx

    reply = httpx.get(url, timeout=10)
    assert reply.status_code == 200, reply.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples}


def test_a_sample_file_another_process_is_creating_is_skipped(tmp_path, monkeypatch):
    """Multiprocess mode: another API process creates its sample file (empty until it
    sizes it) while this one is scraped. That file holds no sample yet; the scrape
    answers with every other process's samples instead of failing (a 500)."""
    import json

    from prometheus_client import generate_latest
    from prometheus_client.mmap_dict import MmapedDict

    from lamina_service import metrics
    from lamina_service.queue.models import JobStatus

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    written = MmapedDict(str(tmp_path / "counter_4241.db"))  # a running process's samples
    written.write_value(json.dumps(["lamina_jobs_submitted", "lamina_jobs_submitted_total",
                                    {}, "Jobs accepted and queued."]), 3.0, 0.0)
    written.close()
    (tmp_path / "histogram_4242.db").touch()  # opened (created) but not sized yet
    registry = metrics.scrape_registry(lambda: {JobStatus.QUEUED: 2})
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    assert samples[("lamina_jobs_submitted_total", ())] == 3.0
    assert samples[("lamina_jobs", (("state", "queued"),))] == 2

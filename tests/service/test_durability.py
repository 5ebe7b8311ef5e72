"""Durable acceptance: a 202 means the job is on disk. Redis (AOF, ``appendfsync always``,
as in deploy/redis/redis.conf) is SIGKILLed right after each acknowledged submission."""

from __future__ import annotations

import pytest

from tests.service.conftest import AUTH_A, job_body, npz_bytes


def run_kills(settings, tmp_path, rounds: int) -> None:
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from lamina_service.api import create_app
    from lamina_service.queue import JobStatus
    from lamina_service.redis_server import RedisServer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient
    (tmp_path / "redis").mkdir()
    server = RedisServer(appendonly=True, appendfsync="always",
                         data_dir=str(tmp_path / "redis")).start()
    try:
        app = create_app(settings.model_copy(update={"redis_url": server.url}))
        with TestClient(app) as client:
            dataset = client.post("/v1/datasets", content=npz_bytes(), headers=AUTH_A)
            body = job_body(dataset.json()["id"])
            accepted = []
            for _ in range(rounds):
                reply = client.post("/v1/jobs", json=body, headers=AUTH_A)
                assert reply.status_code == 202, reply.text
                accepted.append(reply.json()["id"])
                server.kill()  # right after the 202
                server.start()
                record = app.state.producer.get("alice", accepted[-1])
                assert record is not None and record.status is JobStatus.QUEUED
            assert app.state.producer.counts()[JobStatus.QUEUED] == rounds
            listed = client.get(f"/v1/jobs?status=queued&limit={min(rounds, 200)}",
                                headers=AUTH_A).json()["items"]
            assert [job["id"] for job in listed] == accepted[::-1][:200]
    finally:
        server.cleanup()


def test_a_202_survives_redis_sigkill(settings, tmp_path):
    run_kills(settings, tmp_path, 20)


@pytest.mark.slow
def test_a_202_survives_redis_sigkill_500_times_in_a_row(settings, tmp_path):
    run_kills(settings, tmp_path, 500)

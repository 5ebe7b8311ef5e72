"""Jobs API in-process: submit, read, list, cancel, events (SSE), artifacts."""

from __future__ import annotations

import pytest

from tests.service.conftest import AUTH_A, job_body


@pytest.fixture
def consumer(rclient, settings):
    from lamina_service.queue import Consumer

    return Consumer(rclient, settings, "w-test")


def test_submit_returns_202_and_the_job_is_readable(client, dataset_id):
    reply = client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A)
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert body["status"] == "queued" and body["id"].startswith("j_")
    # Dense(4) on 3 inputs + Dense(1); Sequential.layers leaves out the InputLayer, as Keras.
    assert body["cost"]["params"] == 3 * 4 + 4 + 4 + 1 and body["cost"]["layers"] == 2
    job = client.get(f"/v1/jobs/{body['id']}", headers=AUTH_A).json()
    assert job["status"] == "queued" and job["attempts"] == 0 and job["name"] == "t"
    assert job["spec"]["fit"]["epochs"] == 2 and job["spec"]["compile"]["loss"] == "mse"


def test_idempotency_key(client, dataset_id):
    body = job_body(dataset_id, idempotency_key="abc")
    first = client.post("/v1/jobs", json=body, headers=AUTH_A).json()
    second = client.post("/v1/jobs", json=body, headers=AUTH_A).json()
    assert first["id"] == second["id"] and second["created"] is False


def test_list_with_status_filter_and_pagination(client, dataset_id):
    ids = [client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A).json()["id"]
           for _ in range(3)]
    client.post(f"/v1/jobs/{ids[1]}/cancel", headers=AUTH_A)
    page = client.get("/v1/jobs?limit=2", headers=AUTH_A).json()
    assert [j["id"] for j in page["items"]] == [ids[2], ids[1]] and page["next_offset"] == 2
    rest = client.get("/v1/jobs?limit=2&offset=2", headers=AUTH_A).json()
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_offset"] is None
    cancelled = client.get("/v1/jobs?status=cancelled", headers=AUTH_A).json()["items"]
    assert [j["id"] for j in cancelled] == [ids[1]]
    assert client.get("/v1/jobs?status=bogus", headers=AUTH_A).status_code == 422


def test_cancel_running_job_reaches_the_worker(client, dataset_id, consumer):
    job_id = client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A).json()["id"]
    job = consumer.claim(block_ms=100)
    reply = client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH_A).json()
    assert reply["status"] == "running" and reply["cancel_requested"] is True
    assert consumer.is_cancel_requested(job) and consumer.mark_cancelled(job)
    assert client.get(f"/v1/jobs/{job_id}", headers=AUTH_A).json()["status"] == "cancelled"


def run_job(consumer, storage, epochs=2):
    job = consumer.claim(block_ms=100)
    for epoch in range(epochs):
        consumer.publish_event(job, "batch", {"epoch": epoch, "batch": 0, "loss": 1.0})
        consumer.record_epoch(job, epoch, {"loss": 1.0 / (epoch + 1)})
    (storage.checkpoint_dir(job.id) / "epoch-0001.weights.h5").write_bytes(b"ckpt")
    storage.model_path(job.id).write_bytes(b"PK-model")
    assert consumer.commit(job, job.id, {"loss": 0.5})
    return job


def test_history_events_and_artifacts(client, app, dataset_id, consumer):
    job_id = client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A).json()["id"]
    run_job(consumer, app.state.storage)
    job = client.get(f"/v1/jobs/{job_id}", headers=AUTH_A).json()
    assert job["status"] == "succeeded" and job["history"] == {"loss": [1.0, 0.5]}
    assert job["has_model"] and job["epoch"] == 1

    stream = client.get(f"/v1/jobs/{job_id}/events", headers=AUTH_A)
    assert stream.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in stream.text.split("\n\n") if b.startswith("id:")]
    kinds = [b.split("\n")[1] for b in blocks]
    assert kinds == ["event: state", "event: state", "event: batch", "event: epoch",
                     "event: batch", "event: epoch", "event: state"]
    third_id = blocks[2].split("\n")[0][4:]
    resumed = client.get(f"/v1/jobs/{job_id}/events",
                         headers={**AUTH_A, "Last-Event-ID": third_id}).text
    assert resumed.count("id: ") == 4 and third_id not in resumed

    model = client.get(f"/v1/jobs/{job_id}/model", headers=AUTH_A)
    assert model.status_code == 200 and model.content == b"PK-model"
    listing = client.get(f"/v1/jobs/{job_id}/checkpoints", headers=AUTH_A).json()
    assert [c["name"] for c in listing] == ["epoch-0001.weights.h5"]
    ckpt = client.get(f"/v1/jobs/{job_id}/checkpoints/epoch-0001.weights.h5", headers=AUTH_A)
    assert ckpt.content == b"ckpt"
    assert ckpt.headers["content-length"] == "4" and ckpt.headers["content-disposition"] == (
        'attachment; filename="epoch-0001.weights.h5"')
    assert model.headers["content-disposition"] == f'attachment; filename="{job_id}.keras"'


def test_model_before_success_is_404(client, dataset_id):
    job_id = client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A).json()["id"]
    reply = client.get(f"/v1/jobs/{job_id}/model", headers=AUTH_A)
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
    assert client.get(f"/v1/jobs/{job_id}/checkpoints", headers=AUTH_A).json() == []


def test_callbacks_are_allowlisted(client, dataset_id):
    good = [{"class_name": "EarlyStopping", "config": {"patience": 2}},
            {"class_name": "LearningRateScheduler",
             "config": {"schedule": {"type": "step", "initial_learning_rate": 0.1,
                                     "drop": 0.5, "every": 2}}},
            {"class_name": "TerminateOnNaN"}, {"class_name": "ModelCheckpoint"},
            {"class_name": "ReduceLROnPlateau", "config": {"factor": 0.5}},
            {"class_name": "CSVLogger"}]
    reply = client.post("/v1/jobs", json=job_body(dataset_id, callbacks=good), headers=AUTH_A)
    assert reply.status_code == 202, reply.text
    for bad in ({"class_name": "RemoteMonitor"},
                {"class_name": "ModelCheckpoint", "config": {"filepath": "/etc/x"}},
                {"class_name": "LearningRateScheduler",
                 "config": {"schedule": {"type": "python", "code": "1"}}}):
        reply = client.post("/v1/jobs", json=job_body(dataset_id, callbacks=[bad]),
                            headers=AUTH_A)
        assert reply.status_code == 422 and reply.json()["error"]["field"].startswith("callbacks")


def test_metrics_endpoint(client, dataset_id):
    client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A)
    text = client.get("/metrics").text
    assert 'lamina_jobs{state="queued"} 1.0' in text and "lamina_queue_depth 1.0" in text
    assert 'lamina_http_requests_total{method="POST",route="/v1/jobs",status="202"}' in text
    assert "lamina_http_request_duration_seconds_bucket" in text
    assert "lamina_jobs_submitted_total" in text


def test_health_and_web_page(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    import re

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # the dashboard's assets are served by the API itself, never fetched from elsewhere
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets

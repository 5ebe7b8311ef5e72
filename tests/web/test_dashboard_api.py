"""The endpoints the dashboard reads (/v1/dashboard/...) and the page's static files."""

from __future__ import annotations

import pytest

from tests.service.conftest import AUTH_A, AUTH_B, job_body, npz_bytes


@pytest.fixture
def dataset(client):
    reply = client.post("/v1/datasets", content=npz_bytes(), headers=AUTH_A)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def run_epochs(app, logs_per_epoch):
    from lamina_service.queue import Consumer

    consumer = Consumer(app.state.redis, app.state.settings, "w-test")
    job = consumer.claim(block_ms=1000)
    for epoch, logs in enumerate(logs_per_epoch):
        consumer.record_epoch(job, epoch, logs)
    return consumer, job


def test_rows_carry_model_progress_and_best_value(client, app, dataset):
    body = job_body(dataset, name="row", replicas=1, fit={"epochs": 5, "batch_size": 4},
                    callbacks=[{"class_name": "EarlyStopping",
                                "config": {"monitor": "val_mae", "patience": 3}}])
    job_id = client.post("/v1/jobs", json=body, headers=AUTH_A).json()["id"]
    run_epochs(app, [{"loss": 3.0, "val_loss": 2.0, "val_mae": 0.9},
                     {"loss": 2.0, "val_loss": 2.5, "val_mae": 0.4},
                     {"loss": 1.0, "val_loss": 1.5, "val_mae": 0.7}])
    page = client.get("/v1/dashboard/jobs", headers=AUTH_A).json()
    (row,) = page["items"]
    assert page["next_offset"] is None
    assert row["id"] == job_id and row["status"] == "running"
    assert (row["model_class"], row["params"], row["replicas"]) == ("Sequential", 21, 1)
    assert (row["epoch"], row["epochs"]) == (2, 5)
    assert row["best"] == {"metric": "val_mae", "value": 0.4, "epoch": 1, "mode": "min"}
    assert client.get("/v1/dashboard/jobs", headers=AUTH_B).json()["items"] == []


def test_best_value_direction_follows_the_metric():
    from lamina_service.dashboard import best_value

    history = {"loss": [1.0, 0.5], "val_accuracy": [0.6, 0.9, 0.7]}
    spec = {"callbacks": [{"class_name": "ModelCheckpoint",
                           "config": {"monitor": "val_accuracy"}}]}
    assert best_value(spec, history) == {"metric": "val_accuracy", "value": 0.9, "epoch": 1,
                                         "mode": "max"}
    assert best_value({}, history)["metric"] == "loss"
    assert best_value({}, {}) is None


def test_summary_lists_layers_shapes_and_settings(client, app, dataset):
    job_id = client.post("/v1/jobs", json=job_body(dataset), headers=AUTH_A).json()["id"]
    run_epochs(app, [{"loss": 1.0, "mae": 0.5}])
    summary = client.get(f"/v1/dashboard/jobs/{job_id}", headers=AUTH_A).json()
    assert summary["model"]["built"] is True
    assert summary["model"]["params"] == 21
    assert [(layer["name"], layer["output_shape"], layer["params"])
            for layer in summary["model"]["layers"]] == [("hidden", [None, 4], 16),
                                                         ("out", [None, 1], 5)]
    assert summary["compile"]["metrics"] == ["mae"]
    assert summary["fit"]["epochs"] == 2
    assert summary["history"] == {"loss": [1.0], "mae": [0.5]}
    other = client.get(f"/v1/dashboard/jobs/{job_id}", headers=AUTH_B)
    assert other.status_code == 404
    assert client.get("/v1/dashboard/jobs").status_code == 401


@pytest.mark.parametrize("path,media", [
    ("/web/app.js", "text/javascript"), ("/web/app.css", "text/css"),
    ("/web/vendor/uplot/uPlot.iife.min.js", "text/javascript"),
    ("/web/vendor/uplot/LICENSE", "text/plain")])
def test_static_files_are_served_without_auth(client, path, media):
    reply = client.get(path)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith(media)
    assert reply.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/web/../config.py", "/web/%2e%2e/config.py",
                                  "/web/nope.js", "/web/vendor", "/web/"])
def test_only_shipped_files_are_served(client, path):
    reply = client.get(path)
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"


def test_index_loads_only_local_assets(client):
    page = client.get("/").text
    assert "http://" not in page and "https://" not in page
    for src in ("/web/vendor/uplot/uPlot.iife.min.js", "/web/app.js", "/web/app.css"):
        assert src in page
        assert client.get(src).status_code == 200


def test_rows_page_and_filter_by_status(client, dataset):
    ids = [client.post("/v1/jobs", json=job_body(dataset, name=f"n{i}"), headers=AUTH_A)
           .json()["id"] for i in range(3)]
    client.post(f"/v1/jobs/{ids[0]}/cancel", headers=AUTH_A)
    first = client.get("/v1/dashboard/jobs?limit=2", headers=AUTH_A).json()
    assert [r["id"] for r in first["items"]] == ids[:0:-1] and first["next_offset"] == 2
    rest = client.get("/v1/dashboard/jobs?limit=2&offset=2", headers=AUTH_A).json()
    assert [r["id"] for r in rest["items"]] == ids[:1] and rest["next_offset"] is None
    cancelled = client.get("/v1/dashboard/jobs?status=cancelled", headers=AUTH_A).json()
    assert [(r["id"], r["status"]) for r in cancelled["items"]] == [(ids[0], "cancelled")]
    assert client.get("/v1/dashboard/jobs?limit=1001", headers=AUTH_A).status_code == 422


def test_finished_rows_are_reused_and_running_rows_reread(client, app, dataset):
    """A finished job's row is kept; a running job's row follows each new epoch."""
    from lamina_service import dashboard

    job_id = client.post("/v1/jobs", json=job_body(dataset), headers=AUTH_A).json()["id"]
    consumer, job = run_epochs(app, [{"loss": 2.0}])
    best = [client.get("/v1/dashboard/jobs", headers=AUTH_A).json()["items"][0]["best"]]
    consumer.record_epoch(job, 1, {"loss": 1.0})
    best.append(client.get("/v1/dashboard/jobs", headers=AUTH_A).json()["items"][0]["best"])
    assert [b["value"] for b in best] == [2.0, 1.0]
    consumer.commit(job, job.id, {"loss": 1.0})
    row = client.get("/v1/dashboard/jobs", headers=AUTH_A).json()["items"][0]
    assert row["status"] == "succeeded"
    assert dashboard._rows.get(f"{job_id}@{row['finished_at']}")["best"]["value"] == 1.0


def test_pages_read_in_one_script_match_each_jobs_own_record_and_give_the_total(client, app):
    """The listing's one-script read (ids, fields and the index's size in one reply)
    against the reference: each job's record read on its own (``Producer.get``, HGETALL).
    Pages asked for at once by offset join into the whole list; a job whose record
    expired counts in ``total`` until a page meets it, then leaves the index."""
    from lamina_service.queue import Consumer, Producer, keys
    from tests.service.conftest import seq_model

    producer = Producer(app.state.redis, app.state.settings)
    spec = {"model": seq_model(), "compile": {"optimizer": "adam", "loss": "mse"},
            "fit": {"epochs": 4, "batch_size": 4}}
    ids = [producer.submit("alice", spec, dataset_id="d_x", name=f"j{i}").id for i in range(7)]
    producer.submit("bob", spec, dataset_id="d_x", name="bobs")
    consumer = Consumer(app.state.redis, app.state.settings, "w-pages")
    job = consumer.claim(block_ms=1000)
    consumer.record_epoch(job, 0, {"loss": 0.5})
    producer.cancel("alice", ids[3])
    reference = {i: producer.get("alice", i) for i in ids}
    app.state.redis.delete(keys.job_key(ids[5]))  # as if its record had expired

    pages = [client.get(f"/v1/dashboard/jobs?limit=3&offset={offset}", headers=AUTH_A).json()
             for offset in (6, 3, 0)]  # out of order, as a page asking in parallel may
    assert [p["total"] for p in pages] == [7, 7, 7]
    assert [p["next_offset"] for p in pages] == [None, 6, 3]
    rows = [row for p in pages[::-1] for row in p["items"]]
    assert [r["id"] for r in rows] == [i for i in ids[::-1] if i != ids[5]]
    for row in rows:
        record = reference[row["id"]]
        assert (row["status"], row["name"], row["epoch"], row["attempts"], row["worker"],
                row["submitted_at"], row["started_at"], row["finished_at"]) == (
            record.status.value, record.name, record.epoch, record.attempts, record.worker,
            record.submitted_at, record.started_at, record.finished_at)
    assert client.get("/v1/dashboard/jobs", headers=AUTH_A).json()["total"] == 6
    cancelled = client.get("/v1/dashboard/jobs?status=cancelled", headers=AUTH_A).json()
    assert (cancelled["total"], [r["id"] for r in cancelled["items"]]) == (1, [ids[3]])
    empty = client.get("/v1/dashboard/jobs?status=failed", headers=AUTH_A).json()
    assert empty == {"items": [], "next_offset": None, "total": 0}

"""Property-based checks of the API against its own OpenAPI schema (schemathesis).

Every operation is fuzzed in-process (ASGI) on a real Redis with a tenant's API key,
positive and negative inputs, under every built-in check: no 5xx, status codes, content
types, headers and bodies conforming to the schema, invalid input rejected.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.config import SchemathesisConfig

from tests.service.conftest import AUTH_A, job_body, seq_model

# Schema-valid bodies can still be refused on grounds the schema cannot express: a random
# ``model`` dict is not a buildable Keras config, random bytes are not an ``.npz``. Those are
# documented 422s, so they count as accepted positive data for these two operations only.
# The API key goes through the schema's declared bearer scheme (not a header added after
# generation), so schemathesis knows which requests were sent without valid credentials.
CONFIG = SchemathesisConfig.from_str("""
[auth.openapi.HTTPBearer]
bearer = "key-a"

[[operations]]
include-path-regex = "^/v1/(jobs|datasets)$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "413", "422"]

# The tenant-wide event stream never ends by itself: every generated request would wait
# for the client's timeout. tests/web/test_tenant_events_api.py tests it.
[[operations]]
include-path = "/v1/events"
enabled = false
""")


@pytest.fixture
def api_schema(app, dataset_id):
    api = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)

    @api.hook
    def map_case(context, case):
        """Point valid job bodies at a dataset the tenant owns, so that they get past the
        ownership check (404), and give those with an empty ``model`` a buildable one, so
        that compile, fit and callback combinations reach the queue (202); non-empty
        ``model`` objects go to the validator as generated."""
        body = case.body
        positive = case.meta is None or not case.meta.generation.mode.is_negative
        if positive and case.operation.label == "POST /v1/jobs" and isinstance(body, dict):
            body["dataset_id"] = dataset_id
            if body.get("model") == {}:
                body["model"] = seq_model()
            fit = body.get("fit")
            if isinstance(fit, dict) and isinstance(fit.get("validation_dataset_id"), str):
                fit["validation_dataset_id"] = dataset_id
        return case

    return api


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_schema(case):
    case.call_and_validate()


def test_responses_about_real_jobs_conform(api_schema, client, app, dataset_id, rclient,
                                           settings):
    """Fuzzing mostly meets unknown ids (404); here every read of jobs in each state,
    with histories holding NaN (sent as null), artifacts and errors, is checked."""
    from lamina_service.queue import Consumer

    consumer = Consumer(rclient, settings, "w-schema")
    storage = app.state.storage
    submit = [client.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A)
              for _ in range(4)]
    ids = [reply.json()["id"] for reply in submit]
    done, failed, running = (consumer.claim(block_ms=100) for _ in range(3))
    consumer.publish_event(done, "batch", {"epoch": 0, "batch": 0, "loss": 1.0})
    consumer.record_epoch(done, 0, {"loss": float("nan"), "mae": 0.5})
    consumer.record_epoch(done, 1, {"loss": 0.25, "val_loss": 0.3})
    (storage.checkpoint_dir(done.id) / "epoch-0001.weights.h5").write_bytes(b"ckpt")
    storage.model_path(done.id).write_bytes(b"PK-model")
    assert consumer.commit(done, done.id, {"loss": 0.25})
    consumer.fail(failed, "ValueError: boom", retry=False)
    consumer.record_epoch(running, 0, {"loss": 2.0})
    client.post(f"/v1/jobs/{ids[3]}/cancel", headers=AUTH_A)

    calls = [("POST", "/v1/jobs", "/v1/jobs", submit[0])]
    for path in ("/v1/jobs", "/v1/jobs?status=running", "/v1/jobs?limit=1"):
        calls.append(("GET", "/v1/jobs", path, None))
    for job_id in ids:
        calls += [("GET", "/v1/jobs/{job_id}", f"/v1/jobs/{job_id}", None),
                  ("POST", "/v1/jobs/{job_id}/cancel", f"/v1/jobs/{job_id}/cancel", None),
                  ("GET", "/v1/jobs/{job_id}/events", f"/v1/jobs/{job_id}/events", None),
                  ("GET", "/v1/jobs/{job_id}/model", f"/v1/jobs/{job_id}/model", None),
                  ("GET", "/v1/jobs/{job_id}/checkpoints", f"/v1/jobs/{job_id}/checkpoints",
                   None)]
    calls += [("GET", "/v1/jobs/{job_id}/checkpoints/{name}",
               f"/v1/jobs/{done.id}/checkpoints/epoch-0001.weights.h5", None),
              ("GET", "/v1/datasets/{dataset_id}", f"/v1/datasets/{dataset_id}", None),
              ("GET", "/metrics", "/metrics", None), ("GET", "/readyz", "/readyz", None)]
    statuses = set()
    for method, template, url, reply in calls:
        if reply is None:
            if url == f"/v1/jobs/{running.id}/events":
                continue  # a live stream does not end; finished jobs cover its 200
            reply = client.request(method, url, headers=AUTH_A)
        api_schema[template][method].validate_response(reply)
        statuses.add((template, reply.status_code))
    assert ("/v1/jobs/{job_id}/model", 200) in statuses
    assert ("/v1/jobs/{job_id}/model", 404) in statuses


@pytest.mark.parametrize("method, path, body, status, expect", [
    # Starlette's 405 listed only the first matching route's methods.
    ("PUT", "/v1/jobs", None, 405, {"allow": "GET, POST"}),
    ("DELETE", "/v1/jobs/j_0123456789abcdef01234567", None, 405, {"allow": "GET"}),
    # A body that is not UTF-8 was a bare 400 outside the documented error codes.
    ("POST", "/v1/jobs", b"\xff\xfe{", 422, {"code": "invalid", "field": "body"}),
    # An empty dataset id is malformed input, not an unknown dataset.
    ("POST", "/v1/jobs", {"dataset_id": ""}, 422, {"code": "invalid", "field": "dataset_id"}),
])
def test_regressions_found_by_schemathesis(client, dataset_id, method, path, body, status,
                                           expect):
    if isinstance(body, dict):
        body = {**job_body(dataset_id), **body}
    content = body if isinstance(body, bytes) else None
    reply = client.request(method, path, headers={**AUTH_A, "Content-Type": "application/json"},
                           content=content, json=body if content is None else None)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    for key, value in expect.items():
        assert (reply.headers[key] if key == "allow" else error[key]) == value

"""Fair sharing against real Redis: tenants take turns within a priority, priorities go
first, per-tenant quotas (queued jobs, running replicas) and the request rate limit."""

from __future__ import annotations

import pytest

from lamina_service.config import Quotas
from lamina_service.errors import TooManyRequests
from lamina_service.queue import JobStatus
from tests.service.conftest import AUTH_A, AUTH_B, job_body

SPEC = {"model": {}, "fit": {"epochs": 1}}


def submit(producer, tenant, **kwargs):
    return producer.submit(tenant, SPEC, dataset_id="d_train", **kwargs).id


def claim_order(consumer, n):
    out = []
    for _ in range(n):
        job = consumer.claim(block_ms=0)
        out.append(job.id)
        assert consumer.commit(job, "m", {})
    return out


def test_one_tenants_backlog_does_not_starve_another(producer, make_consumer):
    backlog = [submit(producer, "alice") for _ in range(200)]
    single = submit(producer, "bob")
    order = claim_order(make_consumer("w"), 3)
    assert order.index(single) < 2  # claimed before alice's second job (and her third)
    assert order == [backlog[0], single, backlog[1]]


def test_tenants_take_turns_in_submission_order(producer, make_consumer):
    jobs = {t: [submit(producer, t) for _ in range(3)] for t in ("alice", "bob", "carol")}
    order = claim_order(make_consumer("w"), 9)
    expected = [jobs[t][i] for i in range(3) for t in ("alice", "bob", "carol")]
    assert order == expected


def test_high_priority_submitted_last_is_claimed_next(producer, make_consumer):
    for tenant in ("alice", "bob"):
        for _ in range(20):
            submit(producer, tenant)
    low = submit(producer, "carol", priority="low")
    urgent = submit(producer, "alice", priority="high")
    consumer = make_consumer("w")
    assert claim_order(consumer, 1) == [urgent]
    order = claim_order(consumer, 40)
    assert low not in order
    assert claim_order(consumer, 1) == [low]
    assert producer.get("alice", urgent).priority == "high"


def test_cancelled_queued_jobs_are_skipped_and_the_ring_stays_consistent(producer,
                                                                          make_consumer):
    a = [submit(producer, "alice") for _ in range(3)]
    b = submit(producer, "bob")
    producer.cancel("alice", a[0])
    producer.cancel("alice", a[1])
    consumer = make_consumer("w")
    assert claim_order(consumer, 2) == [b, a[2]]
    assert consumer.claim(block_ms=0) is None
    assert producer.get("alice", a[0]).status is JobStatus.CANCELLED


def test_running_replicas_quota_passes_a_tenant_over(producer, make_consumer, rclient):
    consumer = make_consumer("w", quotas=Quotas(max_running_replicas=4))
    big = submit(producer, "alice", replicas=3)
    second = submit(producer, "alice", replicas=2)
    other = submit(producer, "bob", replicas=4)
    first = consumer.claim(block_ms=0)
    assert first.id == big
    # alice holds 3 of 4 replicas: her next job (2) waits, bob's goes first
    assert consumer.claim(block_ms=0).id == other
    assert consumer.claim(block_ms=0) is None
    assert consumer.commit(first, "m", {})
    assert consumer.claim(block_ms=0).id == second
    assert rclient.get("lamina:tenant:alice:replicas") == "2"


def test_queued_jobs_quota(producer, settings):
    from lamina_service.queue import Producer

    capped = Producer(producer.client, settings.model_copy(
        update={"quotas": Quotas(max_queued_jobs=3)}))
    ids = [submit(capped, "alice") for _ in range(3)]
    with pytest.raises(TooManyRequests, match="max_queued_jobs is 3") as info:
        submit(capped, "alice")
    assert info.value.limit == "max_queued_jobs" and info.value.retry_after >= 1
    submit(capped, "bob")  # other tenants are not affected
    capped.cancel("alice", ids[0])
    submit(capped, "alice")  # a slot was freed


def test_api_quota_and_rate_limit_answer_429_naming_the_limit(settings):
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from lamina_service.api import create_app
    from tests.service.conftest import npz_bytes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient
    quotas = Quotas(max_queued_jobs=2, rate_per_second=0.5, rate_burst=8)
    app = create_app(settings.model_copy(update={"quotas": quotas}))
    with TestClient(app) as client:
        dataset = client.post("/v1/datasets", content=npz_bytes(), headers=AUTH_A).json()["id"]
        for _ in range(2):
            assert client.post("/v1/jobs", json=job_body(dataset), headers=AUTH_A)\
                .status_code == 202
        refused = client.post("/v1/jobs", json=job_body(dataset), headers=AUTH_A)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["limit"] == "max_queued_jobs"
        # 8 tokens, 4 spent above, refilled at 0.5/s: the bucket runs dry within 8 reads
        replies = [client.get("/v1/jobs", headers=AUTH_A) for _ in range(8)]
        codes = [r.status_code for r in replies]
        assert codes[0] == 200 and codes[-1] == 429, codes
        limited = replies[-1].json()["error"]
        assert limited["limit"] == "rate_per_second" and "rate_per_second=0.5" in \
            limited["message"]
        assert 1 <= int(replies[-1].headers["Retry-After"]) <= 2
        # the other tenant and the unauthenticated probes are not affected
        assert client.get("/v1/jobs", headers=AUTH_B).status_code == 200
        assert client.get("/healthz").status_code == 200

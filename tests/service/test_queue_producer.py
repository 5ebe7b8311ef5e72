"""Producer: submit, idempotency, get, list/paginate, cancel, events, counts."""

from __future__ import annotations

from lamina_service.queue import JobStatus

SPEC = {"model": {"class_name": "Sequential"}, "fit": {"epochs": 1}}


def test_submit_get_roundtrip(producer):
    sub = producer.submit("alice", SPEC, dataset_id="d_1", name="first")
    assert sub.created and sub.status is JobStatus.QUEUED and sub.id.startswith("j_")
    job = producer.get("alice", sub.id)
    assert job.status is JobStatus.QUEUED
    assert job.spec == SPEC and job.name == "first" and job.dataset_id == "d_1"
    assert job.attempts == 0 and job.history == {} and job.submitted_at > 0


def test_other_tenant_sees_nothing(producer):
    sub = producer.submit("alice", SPEC, dataset_id="d_1")
    assert producer.get("bob", sub.id) is None
    assert producer.status("bob", sub.id) is None
    assert producer.cancel("bob", sub.id) is None
    assert producer.events("bob", sub.id) is None
    assert producer.list_jobs("bob").items == []
    assert producer.get("alice", sub.id).status is JobStatus.QUEUED


def test_idempotency_key_returns_first_job(producer):
    first = producer.submit("alice", SPEC, dataset_id="d", idempotency_key="k1")
    again = producer.submit("alice", SPEC, dataset_id="d", idempotency_key="k1")
    other_tenant = producer.submit("bob", SPEC, dataset_id="d", idempotency_key="k1")
    assert again.id == first.id and not again.created
    assert other_tenant.id != first.id and other_tenant.created
    assert len(producer.list_jobs("alice").items) == 1


def test_list_filters_and_paginates_newest_first(producer):
    ids = [producer.submit("alice", SPEC, dataset_id="d").id for _ in range(5)]
    producer.cancel("alice", ids[0])
    page = producer.list_jobs("alice", limit=2)
    assert [j.id for j in page.items] == ids[::-1][:2] and page.next_offset == 2
    page = producer.list_jobs("alice", offset=4, limit=2)
    assert [j.id for j in page.items] == [ids[0]] and page.next_offset is None
    cancelled = producer.list_jobs("alice", status=JobStatus.CANCELLED)
    assert [j.id for j in cancelled.items] == [ids[0]]
    assert len(producer.list_jobs("alice", status=JobStatus.QUEUED).items) == 4


def test_cancel_queued_job_is_immediate_and_evented(producer):
    sub = producer.submit("alice", SPEC, dataset_id="d")
    job = producer.cancel("alice", sub.id)
    assert job.status is JobStatus.CANCELLED and job.finished_at is not None
    events = producer.events("alice", sub.id)
    assert [e.data["status"] for e in events] == ["queued", "cancelled"]
    assert producer.events("alice", sub.id, after=events[0].id)[0].id == events[1].id
    # cancelling again is a no-op
    assert producer.cancel("alice", sub.id).status is JobStatus.CANCELLED


def test_counts_by_state(producer):
    a = producer.submit("alice", SPEC, dataset_id="d").id
    producer.submit("bob", SPEC, dataset_id="d")
    producer.cancel("alice", a)
    counts = producer.counts()
    assert counts[JobStatus.QUEUED] == 1 and counts[JobStatus.CANCELLED] == 1


def test_finished_jobs_get_a_ttl(producer, rclient):
    from lamina_service.queue import keys

    sub = producer.submit("alice", SPEC, dataset_id="d")
    assert rclient.ttl(keys.job_key(sub.id)) == -1
    producer.cancel("alice", sub.id)
    assert 0 < rclient.ttl(keys.job_key(sub.id)) <= producer.settings.job_ttl_seconds
    assert rclient.ttl(keys.job_events_key(sub.id)) > 0

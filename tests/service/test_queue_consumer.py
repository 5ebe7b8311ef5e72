"""Consumer against real Redis: claim, lease expiry + XAUTOCLAIM, fencing, retries,
dead-letter, requeue, cancel, events and history."""

from __future__ import annotations

import time

from lamina_service.queue import JobStatus

SPEC = {"model": {}, "fit": {"epochs": 2, "validation_dataset_id": "d_val"}}
# the lease of the claims that these tests let expire (the fixture's is the product's
# 30 s): every wait for an expiry is at least this long, never a bound from above
SHORT_LEASE = 0.2


def submit(producer, tenant="alice"):
    return producer.submit(tenant, SPEC, dataset_id="d_train").id


def test_claim_returns_the_job_and_marks_it_running(producer, make_consumer):
    job_id = submit(producer)
    consumer = make_consumer("w1")
    job = consumer.claim(block_ms=100)
    assert job.id == job_id and job.attempt == 1 and job.token == 1
    assert job.spec == SPEC and job.dataset_ids == ("d_train", "d_val")
    record = producer.get("alice", job_id)
    assert record.status is JobStatus.RUNNING and record.worker == "w1"
    assert record.attempts == 1 and record.started_at is not None
    assert consumer.claim(block_ms=50) is None


def test_commit_succeeds_with_history(producer, make_consumer):
    job_id = submit(producer)
    consumer = make_consumer(lease_seconds=SHORT_LEASE)  # expired by the end: not reclaimed
    job = consumer.claim(block_ms=100)
    assert consumer.publish_event(job, "batch", {"batch": 0, "loss": 1.0})
    assert consumer.record_epoch(job, 0, {"loss": 1.0, "accuracy": 0.5})
    assert consumer.record_epoch(job, 1, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6})
    assert consumer.commit(job, "m_final", {"loss": 0.5})
    record = producer.get("alice", job_id)
    assert record.status is JobStatus.SUCCEEDED and record.artifact_id == "m_final"
    assert record.epoch == 1
    assert record.history == {"accuracy": [0.5, 0.75], "loss": [1.0, 0.5],
                              "val_loss": [None, 0.6]}
    kinds = [e.type for e in producer.events("alice", job_id)]
    assert kinds == ["state", "state", "batch", "epoch", "epoch", "state"]
    # a committed job is acknowledged: nothing is pending or redelivered
    time.sleep(SHORT_LEASE + 0.1)
    assert make_consumer("w2").claim(block_ms=50) is None


def test_expired_lease_is_reclaimed_and_stale_attempt_fenced_out(producer, make_consumer):
    job_id = submit(producer)
    dead = make_consumer("dead", lease_seconds=SHORT_LEASE)
    claimed = time.monotonic()
    stale = dead.claim(block_ms=100)
    alive = make_consumer("alive")
    # claims keep failing while the lease holds: the reclaim comes at its end, not before
    # (a bound a descheduled test cannot break, unlike "a claim right after is refused")
    deadline = claimed + 30 * SHORT_LEASE
    while (fresh := alive.claim(block_ms=10)) is None:
        assert time.monotonic() < deadline, "the expired lease was never reclaimed"
    assert time.monotonic() - claimed >= SHORT_LEASE
    assert fresh.id == job_id and fresh.attempt == 2 and fresh.token > stale.token
    assert "lost" in producer.get("alice", job_id).error
    # the stale attempt can no longer write anything
    assert not dead.heartbeat(stale)
    assert not dead.publish_event(stale, "batch", {})
    assert not dead.record_epoch(stale, 0, {"loss": 9.0})
    assert not dead.commit(stale, "m_stale", {})
    assert dead.fail(stale, "boom", retry=False) is None
    assert not dead.requeue(stale)
    assert alive.commit(fresh, "m_fresh", {})
    record = producer.get("alice", job_id)
    assert record.status is JobStatus.SUCCEEDED and record.artifact_id == "m_fresh"


def test_heartbeat_keeps_the_lease(producer, make_consumer):
    """Heartbeats at the worker's pace (every third of a lease) keep the job through
    twice its first lease. The lease is 1 s, not SHORT_LEASE: a loaded machine
    can hold the test off the CPU for over 0.1 s between two heartbeats (with 0.2 s and
    0.1 s sleeps, a 150 ms stall failed 2 of 4 runs)."""
    lease = 1.0
    submit(producer)
    owner = make_consumer("owner", lease_seconds=lease)
    job = owner.claim(block_ms=100)
    claimed = time.monotonic()
    other = make_consumer("other")
    beats = 0
    while time.monotonic() - claimed < 2 * lease:
        time.sleep(lease / 3)
        assert owner.heartbeat(job)
        beats += 1
        assert other.claim(block_ms=1) is None, f"claimed by another after {beats} beats"


def test_retryable_failure_requeues_until_max_attempts(producer, make_consumer):
    job_id = submit(producer)
    consumer = make_consumer()
    for attempt in (1, 2, 3):
        job = consumer.claim(block_ms=100)
        assert job.attempt == attempt
        expected = JobStatus.QUEUED if attempt < 3 else JobStatus.FAILED
        assert consumer.fail(job, f"oom {attempt}", retry=True) is expected
    record = producer.get("alice", job_id)
    assert record.status is JobStatus.FAILED and record.error == "oom 3"
    assert consumer.claim(block_ms=50) is None


def test_worker_loss_beyond_max_attempts_dead_letters(producer, make_consumer):
    job_id = submit(producer)
    for n in range(3):
        assert make_consumer(f"w{n}", lease_seconds=SHORT_LEASE).claim(
            block_ms=100).attempt == n + 1
        time.sleep(SHORT_LEASE + 0.05)
    assert make_consumer("last").claim(block_ms=50) is None
    record = producer.get("alice", job_id)
    assert record.status is JobStatus.FAILED
    assert record.error.startswith("gave up after 3 attempts") and "lost" in record.error


def test_non_retryable_failure_fails_at_once(producer, make_consumer):
    job_id = submit(producer)
    consumer = make_consumer()
    job = consumer.claim(block_ms=100)
    assert consumer.fail(job, "bad shapes", retry=False) is JobStatus.FAILED
    assert producer.get("alice", job_id).error == "bad shapes"


def test_requeue_does_not_count_an_attempt(producer, make_consumer):
    job_id = submit(producer)
    consumer = make_consumer()
    first = consumer.claim(block_ms=100)
    assert consumer.requeue(first)
    assert producer.get("alice", job_id).status is JobStatus.QUEUED
    second = consumer.claim(block_ms=100)
    assert second.attempt == 1 and second.token > first.token
    assert not consumer.commit(first, "m", {})
    assert consumer.commit(second, "m", {})


def test_cancel_running_job_is_cooperative(producer, make_consumer):
    job_id = submit(producer)
    consumer = make_consumer()
    job = consumer.claim(block_ms=100)
    assert not consumer.is_cancel_requested(job)
    assert producer.cancel("alice", job_id).cancel_requested
    assert producer.get("alice", job_id).status is JobStatus.RUNNING
    assert consumer.is_cancel_requested(job)
    assert consumer.mark_cancelled(job)
    assert producer.get("alice", job_id).status is JobStatus.CANCELLED
    assert make_consumer("w2").claim(block_ms=50) is None


def test_cancelled_queued_job_is_skipped(producer, make_consumer):
    job_id = submit(producer)
    producer.cancel("alice", job_id)
    assert make_consumer().claim(block_ms=50) is None
    assert producer.get("alice", job_id).status is JobStatus.CANCELLED


def test_cancel_requested_job_is_cancelled_on_reclaim(producer, make_consumer):
    job_id = submit(producer)
    make_consumer("dead", lease_seconds=SHORT_LEASE).claim(block_ms=100)
    producer.cancel("alice", job_id)
    time.sleep(SHORT_LEASE + 0.1)
    assert make_consumer("w2").claim(block_ms=10) is None
    assert producer.get("alice", job_id).status is JobStatus.CANCELLED


def test_non_finite_logs_are_stored_as_null(producer, make_consumer):
    job_id = submit(producer)
    consumer = make_consumer()
    job = consumer.claim(block_ms=100)
    consumer.record_epoch(job, 0, {"loss": float("nan"), "note": "text"})
    assert producer.get("alice", job_id).history == {"loss": [None]}


def test_unknown_event_type_is_refused(producer, make_consumer):
    import pytest

    submit(producer)
    consumer = make_consumer()
    job = consumer.claim(block_ms=100)
    with pytest.raises(ValueError, match="received 'bogus'"):
        consumer.publish_event(job, "bogus", {})


def test_a_replayed_claim_call_gets_the_same_job_not_a_second_one(producer, make_consumer):
    # What redis-py's retry does when a CLAIM's reply is lost: the same call again.
    first_id, second_id = submit(producer), submit(producer)
    consumer = make_consumer("w1")
    settings = consumer.settings
    args = ("CLAIM", "w1", settings.max_attempts, settings.lease_seconds,
            settings.quotas.max_running_replicas, "nonce-1")
    reply = consumer._scripts.run(*args)
    replay = consumer._scripts.run(*args)
    assert reply[0] == replay[0] == "run"
    assert replay[7] == reply[7] == first_id and replay[1:3] == reply[1:3]
    assert producer.get("alice", second_id).status == JobStatus.QUEUED
    assert producer.get("alice", first_id).attempts == 1
    # Another call (a new nonce) takes the next job.
    assert consumer.claim(block_ms=0).id == second_id


def test_a_replayed_progress_write_is_made_once_and_a_new_attempt_numbers_afresh(
        producer, make_consumer):
    # What the worker's outbox does when Redis died after running a write but before
    # replying: the same write, with the same number, again.
    job_id = submit(producer)
    consumer = make_consumer("w1")
    job = consumer.claim(block_ms=100)
    assert consumer.publish_event(job, "batch", {"batch": 1}, seq=1)
    assert consumer.record_epoch(job, 0, {"loss": 1.0}, seq=2)
    assert consumer.record_epoch(job, 0, {"loss": 1.0}, seq=2)
    assert consumer.publish_event(job, "batch", {"batch": 1}, seq=1)
    assert consumer.record_epoch(job, 1, {"loss": 0.5}, seq=3)
    events = [(e.type, e.data.get("epoch")) for e in producer.events("alice", job_id)]
    assert events == [("state", None), ("state", None), ("batch", None), ("epoch", 0),
                      ("epoch", 1)]
    assert producer.get("alice", job_id).history == {"loss": [1.0, 0.5]}
    # The next attempt has a new fencing token: its numbers start again at 1.
    assert consumer.requeue(job)
    again = consumer.claim(block_ms=100)
    assert consumer.record_epoch(again, 1, {"loss": 0.25}, seq=1)
    epochs = [e.data["epoch"] for e in producer.events("alice", job_id) if e.type == "epoch"]
    assert epochs == [0, 1, 1]
    assert producer.get("alice", job_id).history == {"loss": [1.0, 0.25]}


def test_a_replayed_commit_is_reported_as_made_not_as_fenced_out(producer, make_consumer):
    job_id = submit(producer)
    consumer = make_consumer("w1")
    job = consumer.claim(block_ms=100)
    assert consumer.commit(job, "m_final", {"loss": 0.5})
    assert consumer.commit(job, "m_final", {"loss": 0.5})  # its reply was lost: again
    assert not consumer.commit(job, "m_other", {})  # not a replay: refused
    record = producer.get("alice", job_id)
    assert record.status is JobStatus.SUCCEEDED and record.artifact_id == "m_final"
    assert [e.type for e in producer.events("alice", job_id)].count("state") == 3


def test_replayed_endings_answer_what_they_answered_and_act_once(producer, make_consumer):
    """FAIL, REQUEUE and CANCELLED retried by redis-py after a lost reply: the same
    answer again (not "fenced out"), and the job is requeued, counted, failed once."""
    job_id = submit(producer)
    consumer = make_consumer("w1")
    job = consumer.claim(block_ms=100)
    assert consumer.requeue(job) and consumer.requeue(job)
    assert producer.get("alice", job_id).attempts == 0  # not given back twice
    job = consumer.claim(block_ms=100)
    assert job.attempt == 1
    assert consumer.fail(job, "boom", retry=True) is JobStatus.QUEUED
    assert consumer.fail(job, "boom", retry=True) is JobStatus.QUEUED
    job = consumer.claim(block_ms=100)
    assert job.attempt == 2 and consumer.claim(block_ms=50) is None  # dispatched once
    assert consumer.fail(job, "boom again", retry=False) is JobStatus.FAILED
    assert consumer.fail(job, "boom again", retry=False) is JobStatus.FAILED
    assert producer.get("alice", job_id).status is JobStatus.FAILED
    states = [e for e in producer.events("alice", job_id) if e.type == "state"]
    assert len(states) == 7  # queued, running, queued, running, queued, running, failed

    other = submit(producer)
    job = consumer.claim(block_ms=100)
    assert job.id == other
    producer.cancel("alice", other)
    assert consumer.mark_cancelled(job) and consumer.mark_cancelled(job)
    stale = job
    job_again = producer.get("alice", other)
    assert job_again.status is JobStatus.CANCELLED
    assert not consumer.fail(stale, "late", retry=True)  # another ending: fenced out

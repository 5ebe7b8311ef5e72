"""Crash recovery with real processes: SIGKILL, SIGSTOP (zombie), replica death, SIGTERM."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from lamina.callbacks import Callback

pytestmark = pytest.mark.slow


def long_job(kit, epochs=8, n=2000, seed=7):
    x, y = kit.blobs(n, 20, seed=seed)
    return kit.spec(kit.mlp_config(), x, y, epochs=epochs, batch_size=32, replicas=2,
                    seed=seed), x, y


def epochs_beyond_the_chief(n=2000, batch_size=32, margin=20) -> int:
    """Epochs of a job that still trains ``margin`` epochs after its driver recorded the
    first: the chief runs up to ``MAX_PENDING_EVENTS`` batches ahead of the driver (whose
    job record and checkpoints lag it), so a shorter job may be done training then."""
    from lamina_worker.replica import MAX_PENDING_EVENTS

    steps = -(-n // batch_size)
    return 1 + -(-MAX_PENDING_EVENTS // steps) + margin


def newest_checkpoint_epoch(kit, job_id) -> int:
    return max((int(c["name"][5:11]) for c in kit.storage.list_checkpoints(job_id)),
               default=-1)


def finish_all(kit, job_ids, timeout=120.0, **worker_kwargs):
    """Run in-process burst workers until every job is terminal (leases must expire)."""
    worker = kit.worker(**worker_kwargs)
    kit.wait(lambda: worker.run() is not None and all(
        kit.job(j).status.terminal for j in job_ids), timeout=timeout, every=0.1,
        what="every job to finish")
    return worker


def test_sigkill_worker_resumes_from_checkpoint(kit):
    """Five jobs, each interrupted by SIGKILL of its worker process at a random batch;
    a second worker resumes every one from its last checkpoint to the weights of an
    uninterrupted run."""
    # The kit's 2 s leases expire while the next process starts (~5 s here), so each new
    # process first resumes the job killed before (expired leases are claimed first),
    # then claims its own fresh job, which the test kills in turn; the last one is
    # resumed by finish_all. (With 15 s leases, meant to outlive the five kills, the
    # fifth process resumed the first three jobs anyway, and finish_all idled ~15 s.)
    jobs = [long_job(kit, seed=s) for s in range(7, 12)]
    ids = [kit.submit(spec) for spec, _, _ in jobs]
    for index, job_id in enumerate(ids):
        proc = kit.spawn("--burst", log_name=f"worker-{index}.log")
        try:
            # The epoch is recorded before its checkpoint is written (a checkpoint never
            # gets ahead of the history), so wait for the checkpoints themselves. The kill
            # lands at a random batch of the epoch after the second one, timed by the
            # driver's own pace between the first two (a fixed 0.3 s was ~4 of the ~65 ms
            # epochs of a quiet machine, close to the commit of an 8-epoch job).
            kit.wait(lambda j=job_id: newest_checkpoint_epoch(kit, j) >= 1,
                     what=f"the first epoch's checkpoint of job {index}")
            first = time.monotonic()
            kit.wait(lambda j=job_id: newest_checkpoint_epoch(kit, j) >= 2, every=0.005,
                     what=f"the second epoch's checkpoint of job {index}")
            time.sleep(random.uniform(0.0, time.monotonic() - first))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        assert kit.job(job_id).status.value == "running"
    finish_all(kit, ids, timeout=300)
    for job_id, (spec, x, y) in zip(ids, jobs):
        record = kit.job(job_id)
        assert record.status.value == "succeeded", record.error
        assert record.attempts == 2
        resumed = [d for kind, d in kit.events(job_id) if kind == "state" and "resumed_from" in d]
        assert resumed and resumed[-1]["resumed_from"]["epoch"] >= 1, job_id
        expected, _ = kit.reference(spec, x, y)
        kit.assert_close(kit.final_weights(job_id), expected)


class KillReplicaOnce(Callback):
    """Kills replica 1 with ``ray.kill`` at a given batch of a given epoch, once."""

    trainer = None  # set by the worker's trainer

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch, self.done = 0, False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        import ray

        if not self.done and (self.epoch, batch) == self.at:
            self.done = True
            ray.kill(self.trainer.actors[1])


def test_replica_killed_mid_epoch_job_succeeds(kit):
    from lamina_worker import metrics

    # Long enough that the replicas still train when the driver, up to MAX_PENDING_EVENTS
    # batches behind the chief, kills one: with 3 epochs a 0.2 s stall of the driver
    # before the kill let both finish (no restart; 3 of 3 runs failed).
    spec, x, y = long_job(kit, epochs=epochs_beyond_the_chief(n=640), n=640)
    job_id = kit.submit(spec)
    killer = KillReplicaOnce(epoch=1, batch=5)
    before = metrics.JOB_RETRIES._value.get()
    worker = kit.worker(extra_callbacks=lambda job: [killer])
    worker.run()
    record = kit.job(job_id)
    assert killer.done and killer.trainer.generation == 1
    assert record.status.value == "succeeded", record.error
    assert record.attempts == 1
    assert metrics.JOB_RETRIES._value.get() == before + 1
    expected, _ = kit.reference(spec, x, y)
    kit.assert_close(kit.final_weights(job_id), expected)


def test_zombie_worker_commit_is_refused(kit):
    # Long enough that the zombie is still training when its first epoch is recorded:
    # with 6 epochs its chief had finished then and its driver committed ~0.37 s later
    # on a quiet machine, racing the SIGSTOP.
    spec, x, y = long_job(kit, epochs=epochs_beyond_the_chief())
    job_id = kit.submit(spec)
    zombie = kit.spawn("--burst", "--worker-id", "zombie", log_name="zombie.log")
    try:
        kit.wait(lambda: kit.job(job_id).epoch is not None, what="the zombie's first epoch")
        zombie.send_signal(signal.SIGSTOP)
        stopped_at = time.time()
        stopped = kit.job(job_id)
        assert (stopped.status.value, stopped.worker) == ("running", "zombie"), \
            "the zombie ended its attempt before it was stopped"
        worker = finish_all(kit, [job_id], worker_id="healthy")
        assert time.time() - stopped_at > kit.settings.lease_seconds
        record = kit.job(job_id)
        assert record.status.value == "succeeded", record.error
        assert record.worker == "healthy" and record.attempts == 2
        model_bytes = kit.storage.final_model(job_id).read_bytes()
        checkpoints = {c["name"]: c["modified"] for c in kit.storage.list_checkpoints(job_id)}
        resumed_at = time.time()
        zombie.send_signal(signal.SIGCONT)
        assert zombie.wait(60) == 0
    finally:
        if zombie.poll() is None:
            zombie.send_signal(signal.SIGCONT)
            zombie.kill()
    log = (kit.tmp_path / "zombie.log").read_text()
    assert "fenced" in log, log
    after = kit.job(job_id)
    assert after.status.value == "succeeded" and after.worker == "healthy"
    assert after.artifact_id == record.artifact_id and after.attempts == 2
    assert kit.storage.final_model(job_id).read_bytes() == model_bytes
    now = {c["name"]: c["modified"] for c in kit.storage.list_checkpoints(job_id)}
    assert now == checkpoints and all(m < resumed_at for m in now.values())
    assert worker.outcomes == [(job_id, "succeeded")]
    expected, _ = kit.reference(spec, x, y)
    kit.assert_close(kit.final_weights(job_id), expected)


def test_sigterm_checkpoints_and_requeues_without_counting(kit):
    # 50 epochs: the chief runs up to ~8 epochs ahead of the job record (with 6 epochs it
    # had finished training when SIGTERM landed), and there may be three preemptions.
    spec, x, y = long_job(kit, epochs=50)
    job_id = kit.submit(spec)
    # A preemption that reaches the chief at its epoch's last batch stops it after that
    # epoch's end (replica.Relay._control), whose checkpoint is then the newest: no work
    # lost either, but no mid-epoch checkpoint. Preempt again (a new worker, up to three
    # times) until one lands mid-epoch; with 8 steps an epoch, 4 of 8 landed at an end.
    for preemption in range(3):
        recorded = len(kit.job(job_id).history.get("loss", []))
        proc = kit.spawn("--burst", log_name=f"worker-{preemption}.log")
        try:
            kit.wait(lambda n=recorded: (kit.job(job_id).epoch or 0) >= n + 1,
                     what="two epochs of this attempt")
            time.sleep(0.15)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        record = kit.job(job_id)
        assert record.status.value == "queued"
        assert record.attempts == 0
        names = [c["name"] for c in kit.storage.list_checkpoints(job_id)]
        epoch, step = max((int(n[5:11]), int(n[12:20])) for n in names if n.endswith(".h5"))
        # the newest checkpoint starts where the recorded history ends
        assert epoch == len(record.history["loss"]), (names, record.history)
        if step > 0:
            break
    assert step > 0, names  # a mid-epoch checkpoint
    finish_all(kit, [job_id])
    record = kit.job(job_id)
    assert record.status.value == "succeeded", record.error
    assert record.attempts == 1
    resumed = [d for kind, d in kit.events(job_id) if kind == "state" and "resumed_from" in d]
    assert resumed[-1]["resumed_from"]["step"] > 0  # mid-epoch: no work lost
    expected, _ = kit.reference(spec, x, y)
    kit.assert_close(kit.final_weights(job_id), expected)


def test_an_attempt_is_counted_as_soon_as_its_outcome_is_written(kit, monkeypatch):
    """The worker counts a committed job before it stops the attempt's heartbeat (whose
    thread may be in a renewal against a slow Redis, for up to 5 s): a worker killed
    meanwhile would lose the count of a job it had committed (a chaos run's
    ``lamina_jobs_finished_total`` read 11 of 12)."""
    from lamina_worker import callbacks, metrics

    x, y = kit.blobs(96, 20)
    job_id = kit.submit(kit.spec(kit.mlp_config(), x, y, epochs=1, replicas=1))
    finished = metrics.JOBS_FINISHED.labels("succeeded")
    ended = metrics.ATTEMPTS_ENDED.labels("succeeded")
    before = finished._value.get(), ended._value.get()
    at_stop = []  # the job's status and both counts when the heartbeat is stopped
    stop = callbacks.Heartbeat.__exit__

    def recording_stop(self, *exc):
        at_stop.append((kit.job(job_id).status.value, finished._value.get(),
                        ended._value.get()))
        return stop(self, *exc)

    monkeypatch.setattr(callbacks.Heartbeat, "__exit__", recording_stop)
    assert kit.worker().run() == 1
    assert at_stop == [("succeeded", before[0] + 1, before[1] + 1)]


class BatchClock(Callback):
    """Records when each batch ends."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.monotonic())


def test_cancel_reaches_running_job_within_one_batch(kit):
    spec, _, _ = long_job(kit, epochs=50)
    job_id = kit.submit(spec)
    clock = BatchClock()
    worker = kit.worker(extra_callbacks=lambda job: [clock])
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        kit.wait(lambda: len(clock.ends) >= 20, what="20 batches")
        kit.producer.cancel("local", job_id)
        asked = time.monotonic()  # the request is in Redis (a batch may end meanwhile)
    finally:
        thread.join(120)
    assert kit.job(job_id).status.value == "cancelled"
    assert sum(t > asked for t in clock.ends) <= 1
    assert worker.outcomes == [(job_id, "cancelled")]


def test_non_finite_loss_fails_clearly_without_nan_checkpoints(kit):
    import json

    import numpy as np

    import lamina
    from lamina import layers
    from lamina_worker import checkpoint

    x, y = kit.blobs(400, 20)
    target = (y.astype(np.float32) * 1e3)[:, None]
    model = json.loads(lamina.Sequential([layers.Input((20,)), layers.Dense(1)]).to_json())
    spec = kit.spec(model, x, target, epochs=5, replicas=2, loss="mse", metrics=(),
                    optimizer={"class_name": "SGD", "config": {"learning_rate": 10.0}})
    job_id = kit.submit(spec)
    kit.worker().run()
    record = kit.job(job_id)
    assert record.status.value == "failed"
    assert record.attempts == 1
    assert "non-finite loss" in record.error
    folder = kit.storage.checkpoint_dir(job_id)
    files = sorted(folder.glob("ckpt-*.h5"))
    assert files
    for path in files:
        assert checkpoint.verify(path)
        state = checkpoint.read(path)
        assert all(np.isfinite(w).all() for w in state.weights + state.optimizer)


def test_poison_job_fails_after_max_attempts_others_unaffected(kit):
    x, y = kit.blobs(200, 20)
    bad_x, bad_y = kit.blobs(200, 7)  # 7 features for a model that takes 20
    poison = kit.spec(kit.mlp_config(), bad_x, bad_y, epochs=1)
    good = kit.spec(kit.mlp_config(), x, y, epochs=1)
    poison_id, good_id = kit.submit(poison), kit.submit(good)
    finish_all(kit, [poison_id, good_id])
    record = kit.job(poison_id)
    assert record.status.value == "failed"
    assert record.attempts == kit.settings.max_attempts
    assert "expected shape=(None, 20), found shape=" in record.error, record.error
    assert kit.job(good_id).status.value == "succeeded"


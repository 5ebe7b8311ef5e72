"""Ray faults: a replica's process SIGKILLed mid-training, the Ray head restarted.

Either ends in a resumed attempt (the job goes on from its newest checkpoint and ends
where a fault-free run ends), never in a dead worker process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lamina.callbacks import Callback
from tests.sessions import kill_session
from tests.worker import conftest as worker_conftest
from tests.worker.conftest import Kit
from tests.worker.test_recovery import epochs_beyond_the_chief, long_job

kit = worker_conftest.kit  # the worker tests' fixture (2 s leases, the session's Ray)


class SigkillReplica(Callback):
    """SIGKILLs the process of replica ``rank`` after batch ``batch`` of ``epoch``, once
    (a crash, not ``ray.kill``: Ray learns of it only from the dead process)."""

    trainer = None  # set by the worker's trainer

    def __init__(self, epoch: int, batch: int, rank: int = 1) -> None:
        super().__init__()
        self.at, self.rank = (epoch, batch), rank
        self.epoch, self.killed = 0, None
        self.ended = None  # the last epoch end the driver relayed before the restart

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.trainer.generation == 0:
            self.ended = epoch  # the worker's CheckpointCallback writes (epoch + 1, 0) next

    def on_train_batch_end(self, batch, logs=None):
        if self.killed is None and (self.epoch, batch) == self.at:
            self.killed = self.trainer.replica_pid(self.rank)
            os.kill(self.killed, signal.SIGKILL)


@pytest.mark.parametrize("rank", [1, 0])
def test_sigkilled_replica_resumes_from_checkpoint(kit, rank):
    """A replica's process (a peer, or the chief that relays events) dies by SIGKILL in
    the middle of epoch 2: the group restarts from the epoch-1 checkpoint and the job
    ends with a fault-free run's weights; the worker goes on to the next job."""
    from lamina_worker import metrics

    # Long enough that the replicas still train when the driver, up to MAX_PENDING_EVENTS
    # batches behind the chief, relays batch 5 of epoch 1: with 3 x 20 and then 3 x 63
    # steps the chief could have finished by then (a 0.3 s stall of the driver before the
    # kill: no restart), and killing it restarted nothing
    spec, x, y = long_job(kit, epochs=epochs_beyond_the_chief(n=640), n=640)
    after_spec, after_x, after_y = long_job(kit, epochs=1, n=200, seed=3)
    job_id = kit.submit(spec)
    next_id = kit.submit(after_spec)
    killer = SigkillReplica(epoch=1, batch=5, rank=rank)
    retries = metrics.JOB_RETRIES._value.get()
    worker = kit.worker(extra_callbacks=lambda job: [killer] if job.id == job_id else [])
    assert worker.run() == 2
    assert killer.killed is not None
    with pytest.raises(ProcessLookupError):
        os.kill(killer.killed, 0)
    # from the newest epoch end the driver relayed (and checkpointed) before the restart:
    # the chief's lead decides which
    assert killer.trainer.generation == 1 and killer.ended is not None
    assert killer.trainer.resumed_from == (killer.ended + 1, 0)
    assert metrics.JOB_RETRIES._value.get() == retries + 1
    record = kit.job(job_id)
    assert record.status.value == "succeeded", record.error
    assert worker.outcomes == [(job_id, "succeeded"), (next_id, "succeeded")]
    expected, history = kit.reference(spec, x, y)
    kit.assert_close(kit.final_weights(job_id), expected)
    assert set(record.history) == set(history.history)
    for key, values in history.history.items():
        np.testing.assert_allclose(record.history[key], values, rtol=1e-5, err_msg=key)
    expected_next, _ = kit.reference(after_spec, after_x, after_y)
    kit.assert_close(kit.final_weights(next_id), expected_next)


# -- the Ray head restarting ----------------------------------------------------------------
def start_head(port: int, temp_dir: Path, log: Path, env: dict) -> subprocess.Popen:
    """``ray start --head --block`` in a session of its own (killed as a whole), with
    ``env`` added to this process's environment."""
    from lamina_service.embedded import ray_executable

    with open(log, "ab") as out:
        return subprocess.Popen(
            [ray_executable(), "start", "--head", "--block", "--port", str(port),
             "--node-ip-address", "127.0.0.1", "--num-cpus", "2", "--include-dashboard",
             "false", "--disable-usage-stats", "--temp-dir", str(temp_dir)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **env})


@contextlib.contextmanager
def private_head(folder: Path):
    """A private Ray head (token auth, as ``lamina up``), up until the block ends:
    ``env`` (what joins it needs), ``address``, and ``start()`` / ``kill()`` /
    ``restart()`` of the head (every head started is killed at the end)."""
    from lamina_service.embedded import wait_for_port
    from lamina_service.redis_server import free_port

    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(24),
           "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="lamina-ray-"))
    heads = []

    def start() -> None:
        heads.append(start_head(port, temp_dir, folder / "ray-head.log", env))

    def restart() -> None:
        kill_session(heads[-1])
        start()
        wait_for_port(port, 120)

    start()
    try:
        wait_for_port(port, 120)
        yield SimpleNamespace(address=f"127.0.0.1:{port}", env=env, heads=heads, start=start,
                              restart=restart, kill=lambda: kill_session(heads[-1]))
    finally:
        for head in heads:
            kill_session(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def ray_head(tmp_path, monkeypatch):
    """A private Ray head (:func:`private_head`) the test may kill and restart; the test
    joins it with its token."""
    with private_head(tmp_path) as head:
        for name, value in head.env.items():
            monkeypatch.setenv(name, value)
        yield head


def test_ray_head_restart_resumes_the_attempt(redis_url, ray_head, tmp_path):
    """The Ray head is SIGKILLed (its whole session: GCS, raylet, the replicas) in the
    middle of a job and started again on the same port 3 s later: the worker process
    lives on, its attempt fails and the job resumes from its checkpoint on attempt 2 to
    a fault-free run's weights; the worker then stops cleanly on SIGTERM."""
    from lamina_service.config import Settings

    settings = Settings(redis_url=redis_url, storage_root=str(tmp_path / "storage"),
                        lease_seconds=3.0, max_attempts=3)
    kit = Kit(settings, ray_head.address, tmp_path)
    try:
        # 7,500 small steps (~8 s on a quiet machine, where 2,850 ended in 3 s before the
        # test looked): the kill must land well before the chief's last epoch (the chief
        # runs ahead of the driver's checkpoints); one replica ends bit for bit where
        # local fit ends, however many steps
        x, y = kit.blobs(4000, 20, seed=7)
        spec = kit.spec(kit.mlp_config(), x, y, epochs=60, batch_size=32, replicas=1)
        job_id = kit.submit(spec)
        worker = kit.spawn(log_name="worker.log")
        try:
            # the driver's checkpoints, not the job record (its epoch lags): two epochs
            # (only the newest two are kept, so any of epoch 2 or later)
            kit.wait(lambda: any(int(c["name"][5:11]) >= 2
                                 for c in kit.storage.list_checkpoints(job_id)),
                     timeout=180, every=0.02, what="two epochs")
            ray_head.kill()
            time.sleep(3.0)
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            ray_head.start()
            kit.wait(lambda: kit.job(job_id).status.terminal, timeout=240,
                     what="the job to end after the Ray head restarted")
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
        log = (tmp_path / "worker.log").read_text()[-4000:]
        assert code == 0, log
        record = kit.job(job_id)
        assert record.status.value == "succeeded", (record.error, log)
        assert record.attempts == 2, log
        assert "RayUnavailable" in log
        resumed = [d for kind, d in kit.events(job_id)
                   if kind == "state" and "resumed_from" in d]
        assert resumed and resumed[-1]["resumed_from"]["epoch"] >= 1, (resumed, log)
        expected, history = kit.reference(spec, x, y)
        assert all(a.tobytes() == e.tobytes()
                   for a, e in zip(kit.final_weights(job_id), expected, strict=True))
        assert record.history == history.history
    finally:
        kit.client.close()


def _poll_a_replica_never_placed(address: str, env: dict, head_pid: int, answer) -> None:
    """In a fresh driver process: join the head, start a replica Ray cannot place, kill
    the head's process group, and poll the replica; ``answer`` gets what the poll raised
    (or ``returned``) and how long it took."""
    os.environ.update(env)
    from lamina_worker import raylink

    started = time.monotonic()
    try:
        raylink._join(address, {}, 60)
        group = raylink.Group()
        group.actors = [raylink._replica_class().options(
            resources={"a resource no node has": 1}, max_restarts=0).remote({})]
        os.killpg(head_pid, signal.SIGKILL)  # GCS, raylet, agents: as the chaos injector
        started = time.monotonic()
        group.poll(None, 0.2)
        answer.put(("returned", time.monotonic() - started))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        answer.put((f"{type(exc).__name__}: {exc}", time.monotonic() - started))


def test_overdue_poll_finds_the_head_gone(tmp_path):
    """A call to an actor that was not yet placed when the Ray head died stays
    unanswered (Ray waits for the GCS to place it), so only the overdue poll's check
    of Ray (:func:`raylink._check_ray`: this node's raylet socket refuses) ends the
    driver's wait, within a few checks rather than the poll's 60 s timeout (which
    chaos seed 11's head restart used to wait out)."""
    import multiprocessing

    from lamina_worker import raylink

    context = multiprocessing.get_context("spawn")
    answer = context.Queue()
    with private_head(tmp_path) as head:
        driver = context.Process(target=_poll_a_replica_never_placed,
                                 args=(head.address, head.env, head.heads[-1].pid, answer))
        driver.start()
        try:
            outcome, seconds = answer.get(timeout=raylink.POLL_TIMEOUT + 60)
        finally:
            driver.kill()
            driver.join(30)
    assert outcome.startswith("RayUnavailable: this node's raylet is gone"), (outcome, seconds)
    assert seconds < 4 * raylink.POLL_CHECK_EVERY + 2, seconds


def test_replica_errors_cross_the_driver_process(kit):
    """A real worker process (its replicas driven from its Ray driver child): a job whose
    replicas raise fails after its attempts with the replica's own message, the next
    job succeeds, and the burst worker exits 0."""
    x, y = kit.blobs(200, 20)
    bad_x, bad_y = kit.blobs(200, 7)  # 7 features for a model that takes 20
    poison = kit.submit(kit.spec(kit.mlp_config(), bad_x, bad_y, epochs=1))
    good_spec = kit.spec(kit.mlp_config(), x, y, epochs=2)
    good = kit.submit(good_spec)
    worker = kit.spawn("--burst", log_name="burst.log")
    try:
        kit.wait(lambda: all(kit.job(j).status.terminal for j in (poison, good)),
                 timeout=240, every=0.2, what="both jobs to end")
        code = worker.wait(120)
    finally:
        if worker.poll() is None:
            worker.kill()
    log = (kit.tmp_path / "burst.log").read_text()
    assert code == 0, log[-3000:]
    assert "Ray driver process" in log  # the replicas were driven from the child
    record = kit.job(poison)
    assert record.status.value == "failed" and record.attempts == kit.settings.max_attempts
    assert "expected shape=(None, 20), found shape=" in record.error, record.error
    assert kit.job(good).status.value == "succeeded"
    expected, _ = kit.reference(good_spec, x, y)
    kit.assert_close(kit.final_weights(good), expected)

"""Ray faults: a replica's process SIGKILLed mid-training, the Ray head restarted.

Either ends in a resumed attempt (the job goes on from its newest checkpoint and ends
where a fault-free run ends), never in a dead worker process.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from lamina.callbacks import Callback
from tests.worker.conftest import Kit
from tests.worker.test_recovery import long_job


@pytest.fixture
def kit(redis_url, ray_local, tmp_path):
    from lamina_service.config import Settings

    settings = Settings(redis_url=redis_url, storage_root=str(tmp_path / "storage"),
                        lease_seconds=2.0, max_attempts=3)
    kit = Kit(settings, ray_local.get_runtime_context().gcs_address, tmp_path)
    yield kit
    kit.client.close()


class SigkillReplica(Callback):
    """SIGKILLs the process of replica ``rank`` after batch ``batch`` of ``epoch``, once
    (a crash, not ``ray.kill``: Ray learns of it only from the dead process)."""

    trainer = None  # set by the worker's trainer

    def __init__(self, epoch: int, batch: int, rank: int = 1) -> None:
        super().__init__()
        self.at, self.rank = (epoch, batch), rank
        self.epoch, self.killed = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        import ray

        if self.killed is None and (self.epoch, batch) == self.at:
            actor = self.trainer.actors[self.rank]
            self.killed = ray.get(actor.pid.options(concurrency_group="control").remote(),
                                  timeout=60)
            os.kill(self.killed, signal.SIGKILL)


@pytest.mark.parametrize("rank", [1, 0])
def test_sigkilled_replica_resumes_from_checkpoint(kit, rank):
    """A replica's process (a peer, or the chief that relays events) dies by SIGKILL in
    the middle of epoch 2: the group restarts from the epoch-1 checkpoint and the job
    ends with a fault-free run's weights; the worker goes on to the next job."""
    from lamina_worker import metrics

    spec, x, y = long_job(kit, epochs=3, n=640)
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
    assert killer.trainer.generation == 1 and killer.trainer.resumed_from == (1, 0)
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

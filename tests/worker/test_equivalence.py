"""Two replicas end where local ``fit`` ends (same seed, same global batch).

The only difference is the reduction order: local ``fit`` back-propagates the
mean loss of the whole batch, a replica the mean of its half, and the halves'
gradients are then summed with weights 1/2 each. Float32 rounding differs at
the 1e-7 level per step, which stays below 1e-5 after a few epochs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from prometheus_client import generate_latest

from lamina.callbacks import Callback
from lamina_worker import metrics


class Scrape(Callback):
    """Reads the worker's /metrics text at the last epoch end."""

    text = ""

    def on_epoch_end(self, epoch, logs=None):
        self.text = generate_latest(metrics.REGISTRY).decode()


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_two_replicas_match_local_fit(kit, arch):
    if arch == "mlp":
        x, y = kit.blobs(240, 20)
        model = kit.mlp_config()
    else:
        x, y = kit.blobs(160, 64)
        x = x.reshape(-1, 8, 8, 1)
        model = kit.cnn_config()
    spec = kit.spec(model, x, y, epochs=3, batch_size=32, replicas=2, validation_split=0.25)
    job_id = kit.submit(spec)
    scrape = Scrape()
    steps_before = metrics.TRAIN_STEPS._value.get()
    exchanges_before = _count(metrics.ALLREDUCE_SECONDS)
    finished_before = metrics.JOBS_FINISHED.labels("succeeded")._value.get()
    waits_before = metrics.QUEUE_WAIT._sum.get(), _count(metrics.QUEUE_WAIT)
    worker = kit.worker(extra_callbacks=lambda job: [scrape])
    assert worker.run() == 1
    record = kit.job(job_id)
    assert record.status.value == "succeeded", record.error
    expected, history = kit.reference(spec, x, y)
    kit.assert_close(kit.final_weights(job_id), expected)
    for key, values in history.history.items():
        np.testing.assert_allclose(record.history[key], values, rtol=1e-5, err_msg=key)
    epochs = [data for kind, data in kit.events(job_id) if kind == "epoch"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    # Prometheus: per-job gauges while it runs, gone after; counters advance
    assert f'lamina_train_loss{{job="{job_id}"}}' in scrape.text
    assert f'lamina_val_loss{{job="{job_id}"}}' in scrape.text
    assert f'lamina_job_samples_per_second{{job="{job_id}"}}' in scrape.text
    assert "lamina_worker_busy 1.0" in scrape.text
    after = generate_latest(metrics.REGISTRY).decode()
    assert job_id not in after and "lamina_worker_busy 0.0" in after
    steps = 3 * -(-len(x) * 3 // 4 // 32)
    assert metrics.TRAIN_STEPS._value.get() - steps_before == steps
    assert _count(metrics.ALLREDUCE_SECONDS) - exchanges_before == steps  # one per step
    assert metrics.JOBS_FINISHED.labels("succeeded")._value.get() == finished_before + 1
    assert _count(metrics.QUEUE_WAIT) == waits_before[1] + 1
    assert metrics.QUEUE_WAIT._sum.get() >= waits_before[0]
    for name in ("lamina_train_step_seconds", "lamina_allreduce_seconds",
                 "lamina_checkpoint_seconds", "lamina_train_samples_total",
                 "lamina_job_retries_total", "lamina_jobs_finished_total",
                 "lamina_job_queue_wait_seconds"):
        assert name in after


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2])
def test_dropout_and_shuffle_match_local_fit(kit, replicas):
    """Dropout masks are keyed per sample (seed, epoch, global position), so a job with
    dropout ends where local ``fit`` ends: bit for bit with 1 replica."""
    x, y = kit.blobs(200, 20)
    spec = kit.spec(kit.mlp_config(dropout=0.4), x, y, epochs=3, batch_size=24,
                    replicas=replicas, validation_split=0.2)
    job_id = kit.submit(spec)
    assert kit.worker().run() == 1
    record = kit.job(job_id)
    assert record.status.value == "succeeded", record.error
    expected, history = kit.reference(spec, x, y)
    actual = kit.final_weights(job_id)
    if replicas == 1:
        assert all(a.tobytes() == e.tobytes() for a, e in zip(actual, expected))
        assert record.history == history.history
    else:
        kit.assert_close(actual, expected)


def test_replicas_stay_bit_identical(kit):
    """Every replica ends with the chief's bits (the driver checks the digests too)."""
    from lamina_worker.spec import compile_config
    from lamina_worker.trainer import DataParallelTrainer

    x, y = kit.blobs(100, 20)
    spec = kit.spec(kit.mlp_config(), x, y)
    trainer = DataParallelTrainer(spec["model"], compile_config(spec), (x, y, None), epochs=2,
                                  batch_size=30, seed=1, replicas=2, replica_cpus=0.5)
    initial = [np.array(w.data) for w in trainer.model.weights]
    history = trainer.fit()
    assert len(trainer.digests) == 2 and trainer.digests[0] == trainer.digests[1]
    assert len(history.history["loss"]) == 2
    assert not np.array_equal(trainer.model.weights[0].data, initial[0])


def test_replicas_use_the_cpus_they_reserved(kit):
    """Each replica reports the threads and bucket size it ran with: one thread and no
    buckets for a one-CPU replica, its CPUs for a larger one. Whether Ray's workers
    here imported numpy before Ray set ``OMP_NUM_THREADS`` depends on its worker pool
    (these happen not to), so the subprocess test below is the one that reproduces
    OpenBLAS holding a thread per core."""
    from lamina_worker.spec import compile_config
    from lamina_worker.trainer import DataParallelTrainer

    x, y = kit.blobs(100, 20)
    spec = kit.spec(kit.mlp_config(), x, y)
    trainer = DataParallelTrainer(spec["model"], compile_config(spec), (x, y, None), epochs=1,
                                  batch_size=30, seed=1, replicas=2, replica_cpus=1)
    trainer.fit()
    assert trainer.replica_threads == [{"threads": 1, "bucket_cap_mb": 0.0}] * 2
    cores = len(os.sched_getaffinity(0))
    trainer = DataParallelTrainer(spec["model"], compile_config(spec), (x, y, None), epochs=1,
                                  batch_size=30, seed=1, replicas=1, replica_cpus=cores)
    trainer.fit()
    assert trainer.replica_threads[0]["threads"] == cores


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_a_replica_holds_lamina_to_its_cpus_when_blas_took_every_core():
    """As in a Ray worker that imported numpy before Ray set ``OMP_NUM_THREADS``:
    OpenBLAS starts with two threads, which Lamina would take as its cap."""
    code = ("from lamina.backend import threads; "
            "from lamina_worker.replica import Replica; "
            "before = threads.worker_count(); Replica.use_cpus(None); kept = "
            "threads.worker_count(); Replica.use_cpus(1); print(before, kept, "
            "threads.worker_count())")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}
    env.pop("LAMINA_THREADS", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "1", "0"], done.stdout


def _count(histogram) -> float:
    """Observations so far of an unlabelled prometheus-client Histogram."""
    return sum(bucket.get() for bucket in histogram._buckets)

"""claim -> train -> write the model -> commit: the worker's main loop.

One attempt of a job:

1. ``Consumer.claim`` returns a new job, or one whose lease expired (another
   worker died): its attempt gets a fresh fencing token.
2. A heartbeat thread renews the lease; the ``Lease`` callback stops the
   attempt as soon as Redis says another attempt owns the job.
3. The model is built through the safe deserialiser, the datasets are loaded
   from storage, and :class:`~lamina_worker.trainer.DataParallelTrainer`
   trains, resuming from the newest valid checkpoint of the job if there is one.
4. The final ``.keras`` file is written next to the checkpoints (atomically,
   after a last fencing check) and the job is committed with the attempt's token;
   a refused commit means another attempt's result stands.

Outcomes: ``succeeded``; ``requeued`` (SIGTERM: checkpoint, give back, attempt not
counted); ``cancelled``; ``fenced`` (nothing written); ``failed`` (non-finite
loss: no retry) or ``retry`` (any other error: retried until max attempts);
``abandoned`` (stopped by SIGTERM while Redis was unreachable: the lease expires
and another worker resumes the job from its last checkpoint).

Redis outages never end the process. Every client comes from
:func:`lamina_service.redis_client.connect` (one retry policy) and reports to one
:class:`~lamina_service.redis_client.RedisHealth` (one WARNING per outage, one
line on recovery, ``lamina_redis_up``, ``lamina_redis_outages_total``). An idle
worker's claim waits with backoff until Redis is back; a busy one trains on (see
:mod:`lamina_worker.callbacks`: heartbeat, lease, cancel checks and buffered
progress); the writes that end an attempt (pending history, commit, fail,
requeue, cancelled) wait until Redis answers, and its fencing decides as always.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from pathlib import Path

from lamina_service.config import Settings
from lamina_service.diskio import atomic_path
from lamina_service.queue import Consumer
from lamina_service.redis_client import UNAVAILABLE, RedisHealth, connect
from lamina_service.storage import Storage
from lamina_worker import metrics
from lamina_worker.callbacks import (
    CheckpointCallback,
    Heartbeat,
    Lease,
    Progress,
    PrometheusMetrics,
    StopRequests,
)
from lamina_worker.checkpoint import NonFiniteState
from lamina_worker.errors import Cancelled, Fenced, NonFiniteLoss, Preempted
from lamina_worker.spec import SpecError, initial_weights, plan
from lamina_worker.trainer import DataParallelTrainer

log = logging.getLogger("lamina_worker")


def default_worker_id() -> str:
    """``<host>-<pid>``: unique per process, readable in job records."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    """Runs jobs from the queue until stopped (or, in burst mode, until it is empty).

    Args:
        settings: the ``LAMINA_`` settings (Redis, storage, lease, max attempts).
        worker_id: consumer name (default ``host-pid``).
        max_replicas: cap on a job's replicas (None: as the job asks).
        replica_cpus: ``num_cpus`` of each replica actor.
        checkpoint_every: also checkpoint every that many steps (0: epoch ends only).
        burst: return when the queue is empty.
        block_ms: how long one claim waits for a job.
        extra_callbacks: a function ``job -> list of callbacks`` added to each job
            (tests, instrumentation).
    """

    def __init__(self, settings: Settings, *, worker_id: str | None = None,
                 max_replicas: int | None = None, replica_cpus: float = 1.0,
                 checkpoint_every: int = 0, burst: bool = False,
                 block_ms: int = 1000, extra_callbacks=None) -> None:
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self.max_replicas, self.replica_cpus = max_replicas, replica_cpus
        self.checkpoint_every = checkpoint_every
        self.burst, self.block_ms = burst, block_ms
        self.extra_callbacks = extra_callbacks
        self.health = RedisHealth(on_change=metrics.redis_changed)
        self.consumer = self._new_consumer()
        limits = settings.limits
        self.storage = Storage(settings.storage_root, limits.max_upload_bytes,
                               limits.max_array_bytes)
        self.shutdown = threading.Event()
        self.outcomes: list[tuple[str, str]] = []

    def _new_consumer(self) -> Consumer:
        # A claim blocks up to 1 s in BLPOP: the default socket timeout leaves room.
        return Consumer(connect(self.settings.redis_url), self.settings, self.worker_id)

    def request_shutdown(self) -> None:
        """Stop after the current step (checkpoint + requeue) or before the next claim."""
        self.shutdown.set()

    def run(self) -> int:
        """Claim and run jobs; returns how many attempts ended."""
        handled = 0
        while not self.shutdown.is_set():
            try:
                job = self.health.call(self.consumer.claim, block_ms=self.block_ms)
            except UNAVAILABLE:
                self.shutdown.wait(self.health.delay())
                continue
            if job is None:
                if self.burst:
                    break
                continue
            self.run_job(job)
            handled += 1
        return handled

    def run_job(self, job) -> str:
        """Run one attempt of ``job``; returns its outcome (see the module docstring)."""
        metrics.WORKER_BUSY.set(1)
        if job.attempt > 1:
            metrics.JOB_RETRIES.inc()
        elif job.submitted_at:
            metrics.QUEUE_WAIT.observe(max(0.0, time.time() - job.submitted_at))
        start = time.monotonic()
        try:
            with Heartbeat(self._new_consumer, job, self.settings.lease_seconds / 3,
                           self.health) as beat:
                outcome = self._attempt(job, beat)
        except UNAVAILABLE as exc:
            log.warning("job %s attempt %d: stopping while Redis is unreachable (%s); its "
                        "lease will expire and another worker resumes it", job.id,
                        job.attempt, exc)
            outcome = "abandoned"
            _count_ended(outcome)
        finally:
            metrics.WORKER_BUSY.set(0)
            metrics.forget_job(job.id)
        self.outcomes.append((job.id, outcome))
        log.info("job %s attempt %d: %s in %.1fs", job.id, job.attempt, outcome,
                 time.monotonic() - start)
        return outcome

    def _fence_check(self, lease: Lease, outbox):
        """Before a checkpoint write: the history is in Redis, and the job still ours."""
        def check() -> None:
            if outbox.has_epochs():
                outbox.drain(self.shutdown)
            lease.confirm()
        return check

    def _until_up(self, fn, *args):
        """A write that ends an attempt: retried until Redis answers (or shutdown)."""
        return self.health.call_until_up(fn, *args, stop=self.shutdown)

    def _attempt(self, job, beat: Heartbeat) -> str:
        """Run the attempt and count how it ended as soon as that is written, before
        the trainer is released and the heartbeat stopped (its thread may be in a lease
        renewal against a slow Redis: ``Heartbeat`` waits up to 5 s for it). A worker
        killed in between would take the count of a job it had committed with it."""
        trainers: list = []  # the attempt's trainer, once made
        try:
            outcome = self._run_attempt(job, beat, trainers)
            _count_ended(outcome)
            return outcome
        finally:
            for trainer in trainers:
                trainer.shutdown()

    def _run_attempt(self, job, beat: Heartbeat, trainers: list) -> str:
        consumer = self.consumer
        lease = Lease(consumer, job, beat, self.settings.lease_seconds, stop=self.shutdown)
        progress = Progress(consumer, job, health=self.health)
        try:
            datasets = [self.storage.load_dataset(d) for d in job.dataset_ids]
            job_plan = plan(job.id, job.spec, datasets, self.max_replicas)
            start_weights = None  # the client's model weights (Keras's fit continues)
            if job_plan.initial_weights_id:
                start_weights = initial_weights(
                    self.storage.load_dataset(job_plan.initial_weights_id))
            folder = self.storage.checkpoint_dir(job.id)
            trainer = DataParallelTrainer(
                job_plan.model_config, job_plan.compile_config, job_plan.train, job_plan.val,
                epochs=job_plan.epochs, batch_size=job_plan.batch_size,
                shuffle=job_plan.shuffle, seed=job_plan.seed, replicas=job_plan.replicas,
                checkpoint_dir=folder, checkpoint_every=self.checkpoint_every,
                replica_cpus=self.replica_cpus, name=f"{job.id}-t{job.token}",
                initial_epoch=job_plan.initial_epoch, callbacks_spec=job_plan.callbacks,
                job_id=job.id, initial_weights=start_weights,
                placement=self.settings.replica_placement)
            trainers.append(trainer)
            trainer.fence_check = self._fence_check(lease, progress.outbox)
            # The job's own callbacks run on the chief replica; these watch its events.
            callbacks = [lease, progress, PrometheusMetrics(job.id),
                         StopRequests(consumer, job, self.shutdown, self.health)]
            if self.extra_callbacks is not None:
                callbacks += list(self.extra_callbacks(job))
            callbacks.append(CheckpointCallback(progress.outbox))
            history = trainer.fit(callbacks)
            progress.outbox.drain(self.shutdown)
            lease.confirm()
            artifact = self._write_model(job, trainer.model, lease)
            final = {k: v[-1] for k, v in (history.history if history else {}).items() if v}
            if not self._until_up(consumer.commit, job, artifact, final):
                log.warning("job %s: commit refused (fenced out); another attempt's result "
                            "stands", job.id)
                return "fenced"
            return "succeeded"
        except Preempted:
            progress.outbox.drain(self.shutdown)
            self._until_up(consumer.requeue, job, "shutdown")
            return "requeued"
        except Cancelled:
            self._until_up(consumer.mark_cancelled, job)
            return "cancelled"
        except Fenced as exc:
            log.warning("%s; stopping without writing anything", exc)
            return "fenced"
        except (NonFiniteLoss, NonFiniteState) as exc:
            progress.outbox.drain(self.shutdown)
            self._until_up(consumer.fail, job, f"NonFiniteLoss: {exc}", False)
            return "failed"
        except SpecError as exc:  # the same spec fails the same way: no retry
            progress.outbox.drain(self.shutdown)
            self._until_up(consumer.fail, job, f"SpecError: {exc}", False)
            return "failed"
        except Exception as exc:  # noqa: BLE001 - any error ends the attempt, retried
            if isinstance(exc, UNAVAILABLE) and self.shutdown.is_set():
                raise  # gave up waiting for Redis to stop (see run_job)
            log.error("job %s attempt %d failed:\n%s", job.id, job.attempt,
                      traceback.format_exc())
            progress.outbox.drain(self.shutdown)
            status = self._until_up(consumer.fail, job, f"{type(exc).__name__}: {exc}", True)
            if status is None:
                log.warning("job %s: failure not recorded (fenced out)", job.id)
                return "fenced"
            return "retry" if status.value == "queued" else "failed"

    def _write_model(self, job, model, lease: Lease) -> str:
        """Save the final model atomically; the fencing check is the last thing before.

        ``model.keras`` is published with ``link()`` (never over a file of that name);
        a name left by an attempt that died before its commit is replaced only after
        one more check (:func:`lamina_service.diskio.publish`). So an attempt paused
        between its check and its publish cannot replace the file of a new owner
        that saved and committed meanwhile: its digest stays the served file's.
        """
        import hashlib

        final = Path(self.storage.model_path(job.id))
        # ENOSPC/EIO: no temp file stays, no model.keras appears, the attempt is retried.
        with atomic_path(final, suffix=".keras", before_replace=lease.confirm) as tmp:
            model.save(str(tmp))
            digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
            lease.confirm()
        return f"model.keras@sha256:{digest[:16]}"


def _count_ended(outcome: str) -> None:
    """Count an attempt's end (and a job's, for a final outcome) in the worker's metrics."""
    metrics.ATTEMPTS_ENDED.labels(outcome).inc()
    if outcome in metrics.FINAL_OUTCOMES:
        metrics.JOBS_FINISHED.labels(outcome).inc()

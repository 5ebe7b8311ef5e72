"""The worker's reporting, lease, cancellation and checkpointing as Lamina callbacks.

They run in the driver on the chief replica's events (after the job's own callbacks
ran on the chief with the global logs): ``on_epoch_begin``, ``on_train_batch_end``
and ``on_epoch_end``. A callback that must end the attempt raises a
:class:`~lamina_worker.errors.TrainingStopped` subclass; the trainer turns it into a
control request to the chief (the run ends on every replica at the next exchange)
and the loop into requeue / cancelled / nothing.

``Lease`` goes first in the list (so that a fenced-out attempt stops before any
callback writes a file), ``CheckpointCallback`` last.
"""

from __future__ import annotations

import threading
import time

from lamina.callbacks.callback import Callback
from lamina_worker import metrics
from lamina_worker.errors import Cancelled, Fenced, Preempted


class Heartbeat:
    """Renews a job's lease from a daemon thread, on its own Consumer.

    Args:
        consumer_factory: returns a new ``Consumer`` (one per thread).
        job: the ClaimedJob.
        interval: seconds between renewals (a third of the lease).
    """

    def __init__(self, consumer_factory, job, interval: float) -> None:
        self._consumer = consumer_factory()
        self.job = job
        self.interval = interval
        self.lost = threading.Event()
        self.last_ok = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job.id}",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                ok = self._consumer.heartbeat(self.job)
            except Exception:  # noqa: BLE001 - Redis down: the lease may lapse; keep trying
                continue
            if not ok:
                self.lost.set()
                return
            self.last_ok = time.monotonic()


class Lease(Callback):
    """Stops the attempt as soon as it no longer owns the job (fencing).

    The heartbeat thread renews the lease; when it saw a refusal, or has not
    renewed for longer than the lease (the process was paused), this callback
    asks Redis itself before letting the attempt go on.
    """

    trainer = None

    def __init__(self, consumer, job, heartbeat: Heartbeat, lease_seconds: float) -> None:
        super().__init__()
        self.consumer, self.job, self.heartbeat = consumer, job, heartbeat
        self.lease_seconds = lease_seconds

    def check(self) -> None:
        """Raise :class:`Fenced` unless this attempt still owns the job."""
        stale = time.monotonic() - self.heartbeat.last_ok > self.lease_seconds / 2
        if self.heartbeat.lost.is_set() or stale:
            self.confirm()

    def confirm(self) -> None:
        """Ask Redis now (before a write); raise :class:`Fenced` if the job is lost."""
        if not self.consumer.heartbeat(self.job):
            raise Fenced(f"job {self.job.id}: attempt {self.job.attempt} was fenced out")
        self.heartbeat.last_ok = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.check()

    def on_epoch_end(self, epoch, logs=None):
        self.check()


class StopRequests(Callback):
    """Cancellation (checked every batch) and worker shutdown (SIGTERM) requests."""

    trainer = None

    def __init__(self, consumer, job, shutdown: threading.Event) -> None:
        super().__init__()
        self.consumer, self.job, self.shutdown = consumer, job, shutdown

    def on_train_batch_end(self, batch, logs=None):
        if self.consumer.is_cancel_requested(self.job):
            self.model.stop_training = True
            raise Cancelled(f"job {self.job.id} cancelled at batch {batch + 1}")
        if self.shutdown.is_set():
            raise Preempted(f"worker shutting down at batch {batch + 1}")


class Progress(Callback):
    """Batch events (at most one per ``batch_interval`` s) and epoch history/events."""

    trainer = None

    def __init__(self, consumer, job, batch_interval: float = 0.5) -> None:
        super().__init__()
        self.consumer, self.job, self.batch_interval = consumer, job, batch_interval
        self._last = 0.0
        self._epoch = 0
        self._announced = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        resumed = getattr(self.trainer, "resumed_from", None)
        if not self._announced and resumed is not None:
            self.consumer.publish_event(self.job, "state", {
                "status": "running", "attempt": self.job.attempt,
                "resumed_from": {"epoch": resumed[0], "step": resumed[1]}})
        self._announced = True

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        steps = (self.params or {}).get("steps")
        if now - self._last >= self.batch_interval or (steps and batch + 1 == steps):
            self._last = now
            self.consumer.publish_event(self.job, "batch", {
                "epoch": self._epoch, "batch": batch + 1, "steps": steps,
                "logs": {k: float(v) for k, v in (logs or {}).items()}})

    def on_epoch_end(self, epoch, logs=None):
        self.consumer.record_epoch(self.job, epoch, dict(logs or {}))


class PrometheusMetrics(Callback):
    """Per-job loss gauges (removed by the loop when the attempt ends)."""

    trainer = None

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if "loss" in logs:
            metrics.TRAIN_LOSS.labels(self.job_id).set(logs["loss"])
        if "val_loss" in logs:
            metrics.VAL_LOSS.labels(self.job_id).set(logs["val_loss"])


class CheckpointCallback(Callback):
    """Writes the chief's epoch-end state as a checkpoint at every epoch end.

    The trainer asks its ``fence_check`` (:meth:`Lease.confirm`) before every write,
    so an attempt that lost the job writes no checkpoint.
    """

    trainer = None

    def on_epoch_end(self, epoch, logs=None):
        self.trainer.save_checkpoint(epoch_end=True)

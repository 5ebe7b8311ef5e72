"""The worker's reporting, lease, cancellation and checkpointing as Lamina callbacks.

They run in the driver on the chief replica's events (after the job's own callbacks
ran on the chief with the global logs): ``on_epoch_begin``, ``on_train_batch_end``
and ``on_epoch_end``. A callback that must end the attempt raises a
:class:`~lamina_worker.errors.TrainingStopped` subclass; the trainer turns it into a
control request to the chief (the run ends on every replica at the next exchange)
and the loop into requeue / cancelled / nothing.

``Lease`` goes first in the list (so that a fenced-out attempt stops before any
callback writes a file), ``CheckpointCallback`` last.

Redis outages (:class:`~lamina_service.redis_client.RedisHealth` says when Redis is
down; its calls are skipped until a probe is due, so a batch never waits on a dead
server):

* the heartbeat keeps trying, at the backoff's pace instead of every third of a lease;
* ``Lease`` lets training go on while more than half the lease is left since the
  last renewal (no other attempt can own the job before it expires); past that it
  waits for Redis, whose answer (fencing) decides;
* ``StopRequests`` treats an unanswered cancel check as "no cancel yet";
* ``Progress`` writes through an :class:`Outbox`: while Redis is down, epoch records
  (the job's history) and state events are **buffered, never dropped**, and written
  in order when Redis answers again; batch events are buffered up to
  ``max_batches``, newer ones beyond that are dropped and counted in
  ``lamina_worker_events_dropped_total`` (they are only a progress display). The
  loop drains the outbox before it writes the model, commits or fails the attempt;
  no checkpoint is written while an epoch record waits (``CheckpointCallback``
  skips, other checkpoints wait), so a resume never leaves a gap in the history.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import redis

from lamina.callbacks.callback import Callback
from lamina_service.redis_client import UNAVAILABLE, RedisHealth
from lamina_worker import metrics
from lamina_worker.errors import Cancelled, Fenced, Preempted


class Heartbeat:
    """Renews a job's lease from a daemon thread, on its own Consumer.

    Args:
        consumer_factory: returns a new ``Consumer`` (one per thread).
        job: the ClaimedJob.
        interval: seconds between renewals (a third of the lease).
        health: the process's view of Redis (a private one by default).
    """

    def __init__(self, consumer_factory, job, interval: float,
                 health: RedisHealth | None = None) -> None:
        self._consumer = consumer_factory()
        self.job = job
        self.interval = interval
        self.health = health or RedisHealth()
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
        delay = self.interval
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                ok = self.health.call(self._consumer.heartbeat, self.job)
            except UNAVAILABLE:
                # Redis down: renew as soon as it is back, before the lease lapses.
                delay = min(self.interval, max(0.05, self.health.delay()))
                continue
            except Exception:  # noqa: BLE001 - e.g. a script error: keep trying
                continue
            if not ok:
                self.lost.set()
                return
            self.last_ok = time.monotonic()


class Lease(Callback):
    """Stops the attempt as soon as it no longer owns the job (fencing).

    The heartbeat thread renews the lease; when it saw a refusal, or has not
    renewed for longer than half the lease (the process was paused, or Redis is
    down), this callback asks Redis itself before letting the attempt go on.

    Args:
        consumer: the attempt's Consumer.
        job: the ClaimedJob.
        heartbeat: the running :class:`Heartbeat` (its ``last_ok`` and ``lost``).
        lease_seconds: the lease.
        stop: when set (worker shutdown), stop waiting for an unreachable Redis.
    """

    trainer = None

    def __init__(self, consumer, job, heartbeat: Heartbeat, lease_seconds: float,
                 stop: threading.Event | None = None) -> None:
        super().__init__()
        self.consumer, self.job, self.heartbeat = consumer, job, heartbeat
        self.lease_seconds = lease_seconds
        self.stop = stop

    def check(self) -> None:
        """Raise :class:`Fenced` unless this attempt still owns the job."""
        stale = time.monotonic() - self.heartbeat.last_ok > self.lease_seconds / 2
        if self.heartbeat.lost.is_set() or stale:
            self.confirm()

    def confirm(self) -> None:
        """Ask Redis now (before a write); raise :class:`Fenced` if the job is lost.

        While Redis is unreachable and more than half the lease is left since the
        last renewal, the attempt still owns the job (nobody can claim it before
        the lease expires): go on. Later, wait for Redis and let it decide.

        Raises:
            Fenced: another attempt owns the job.
            redis.ConnectionError: Redis is down and ``stop`` got set.
        """
        health = self.heartbeat.health
        while True:
            within = time.monotonic() - self.heartbeat.last_ok < self.lease_seconds / 2
            if within and not health.should_try():
                return  # Redis down, no probe due: skip the call, it would fail
            try:
                owned = health.call(self.consumer.heartbeat, self.job)
                break
            except UNAVAILABLE:
                if within:
                    return
                if self.stop is not None and self.stop.is_set():
                    raise
                if self.stop is not None:
                    self.stop.wait(health.delay())
                else:
                    time.sleep(health.delay())
        if not owned:
            raise Fenced(f"job {self.job.id}: attempt {self.job.attempt} was fenced out")
        self.heartbeat.last_ok = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.check()

    def on_epoch_end(self, epoch, logs=None):
        self.check()


class StopRequests(Callback):
    """Cancellation (checked every batch) and worker shutdown (SIGTERM) requests.

    While Redis is unreachable a cancel check is skipped or, failing, read as
    "no cancel yet"; the request is seen at the first batch after Redis is back.
    """

    trainer = None

    def __init__(self, consumer, job, shutdown: threading.Event,
                 health: RedisHealth | None = None) -> None:
        super().__init__()
        self.consumer, self.job, self.shutdown = consumer, job, shutdown
        self.health = health or RedisHealth()

    def _cancel_requested(self) -> bool:
        if not self.health.should_try():
            return False
        try:
            # A read: it succeeds while Redis refuses writes (maxmemory), so it does not
            # count as a recovery; the writes (heartbeat, progress) say when Redis is back.
            return self.consumer.is_cancel_requested(self.job)
        except UNAVAILABLE as exc:
            self.health.failed(exc)
            return False

    def on_train_batch_end(self, batch, logs=None):
        if self._cancel_requested():
            self.model.stop_training = True
            raise Cancelled(f"job {self.job.id} cancelled at batch {batch + 1}")
        if self.shutdown.is_set():
            raise Preempted(f"worker shutting down at batch {batch + 1}")


class Outbox:
    """An attempt's progress writes, in order, held while Redis is unreachable.

    Epoch records and state events are kept until written (one per epoch: bounded
    by the job); at most ``max_batches`` batch events are held, newer ones are
    dropped and counted (``lamina_worker_events_dropped_total``). A write refused
    because the attempt was fenced out discards the rest (nothing more of this
    attempt may be written; the ``Lease`` callback stops it). Each write carries its
    number in the attempt, so one whose reply was lost (Redis died after running it)
    is not made twice when it is retried.

    Args:
        consumer: the attempt's Consumer.
        job: the ClaimedJob.
        health: the process's view of Redis.
        max_batches: batch events held at most during an outage.
    """

    def __init__(self, consumer, job, health: RedisHealth, max_batches: int = 1000) -> None:
        self.consumer, self.job, self.health = consumer, job, health
        self.max_batches = max_batches
        self.pending: deque[tuple[str, tuple, int]] = deque()
        self.written = 0  # numbers handed out to writes so far
        self.dropped = 0
        self._batches = 0

    def event(self, type: str, data: dict) -> None:
        """Publish an event (``state``, ``batch``) now, or later in order."""
        if type == "batch":
            if self._batches >= self.max_batches:
                self.dropped += 1
                metrics.EVENTS_DROPPED.inc()
                return
            self._batches += 1
        self._hold("event", (type, data))

    def epoch(self, epoch: int, logs: dict, perf: dict | None = None) -> None:
        """Record an epoch of the history now, or later in order (never dropped);
        ``perf`` goes into its event only (see ``Consumer.record_epoch``)."""
        self._hold("epoch", (epoch, logs, perf))

    def _hold(self, kind: str, args: tuple) -> None:
        self.written += 1
        self.pending.append((kind, args, self.written))
        self.flush()

    def flush(self) -> bool:
        """Write what is pending if Redis is up or a probe is due.

        Returns:
            True when nothing is pending any more.
        """
        while self.pending and self.health.should_try():
            kind, args, seq = self.pending[0]
            write = self.consumer.record_epoch if kind == "epoch" else self.consumer.publish_event
            try:
                written = self.health.call(write, self.job, *args, seq=seq)
            except UNAVAILABLE:
                return False
            self.pending.popleft()
            if kind == "event" and args[0] == "batch":
                self._batches = max(0, self._batches - 1)
            if not written:
                self.pending.clear()
                self._batches = 0
        return not self.pending

    def has_epochs(self) -> bool:
        """True while an epoch record waits to be written."""
        return any(kind == "epoch" for kind, _, _ in self.pending)

    def drain(self, stop: threading.Event | None = None) -> None:
        """Write everything pending, waiting for Redis as long as it is down.

        Raises:
            redis.ConnectionError: Redis is down and ``stop`` got set.
        """
        while not self.flush():
            if stop is not None and stop.is_set():
                raise redis.ConnectionError(
                    f"Redis is unreachable and the worker is stopping; {len(self.pending)} "
                    f"progress writes of job {self.job.id} not made")
            delay = max(0.05, self.health.delay())
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


class Progress(Callback):
    """Batch events (at most one per ``batch_interval`` s) and epoch history/events.

    Writes go through :attr:`outbox` (see the module docstring for outages).
    """

    trainer = None

    def __init__(self, consumer, job, batch_interval: float = 0.5,
                 health: RedisHealth | None = None) -> None:
        super().__init__()
        self.job, self.batch_interval = job, batch_interval
        self.outbox = Outbox(consumer, job, health or RedisHealth())
        self._last = 0.0
        self._epoch = 0
        self._announced = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        resumed = getattr(self.trainer, "resumed_from", None)
        if not self._announced and resumed is not None:
            self.outbox.event("state", {
                "status": "running", "attempt": self.job.attempt,
                "resumed_from": {"epoch": resumed[0], "step": resumed[1]}})
        self._announced = True

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        steps = (self.params or {}).get("steps")
        if now - self._last >= self.batch_interval or (steps and batch + 1 == steps):
            self._last = now
            self.outbox.event("batch", {
                "epoch": self._epoch, "batch": batch + 1, "steps": steps,
                "logs": {k: float(v) for k, v in (logs or {}).items()}})

    def on_epoch_end(self, epoch, logs=None):
        self.outbox.epoch(epoch, dict(logs or {}), getattr(self.trainer, "epoch_perf", None))


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
    so an attempt that lost the job writes no checkpoint. A checkpoint never gets
    ahead of the history: while epoch records wait in ``outbox`` (Redis down) the
    epoch-end checkpoint is skipped, so an attempt resumed from the last one re-runs
    and re-records those epochs instead of leaving a gap.

    Args:
        outbox: the attempt's :class:`Outbox` (None: always write).
    """

    trainer = None

    def __init__(self, outbox: Outbox | None = None) -> None:
        super().__init__()
        self.outbox = outbox

    def on_epoch_end(self, epoch, logs=None):
        if self.outbox is not None and not self.outbox.flush() and self.outbox.has_epochs():
            return
        self.trainer.save_checkpoint(epoch_end=True)

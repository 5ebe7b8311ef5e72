"""Every Prometheus metric of the worker process, defined once (``lamina_`` prefix).

Per-job gauges carry the label ``job`` and are removed when the job ends, so a
long-lived worker does not accumulate series of finished jobs.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

TRAIN_STEPS = Counter(
    "lamina_train_steps_total", "Synchronous training steps (global batches) run.",
    registry=REGISTRY,
)
TRAIN_SAMPLES = Counter(
    "lamina_train_samples_total", "Training samples processed, over all replicas.",
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "lamina_train_step_seconds",
    "Wall time of one synchronous step on the chief replica (batch end to batch end).",
    buckets=_STEP_BUCKETS, registry=REGISTRY,
)
ALLREDUCE_SECONDS = Histogram(
    "lamina_allreduce_seconds",
    "Per step, on the chief replica: the gradient all-reduce (waiting for the peers, "
    "summing its chunk, reading the sum).",
    buckets=(0.0001, 0.00025, 0.0005, *_STEP_BUCKETS), registry=REGISTRY,
)
JOB_SAMPLES_PER_SECOND = Gauge(
    "lamina_job_samples_per_second",
    "Training samples per second of the job's last epoch (all replicas; start-up excluded).",
    ["job"], registry=REGISTRY,
)
CHECKPOINT_SECONDS = Histogram(
    "lamina_checkpoint_seconds", "Time to pull the state and write one checkpoint.",
    buckets=_STEP_BUCKETS, registry=REGISTRY,
)
TRAIN_LOSS = Gauge(
    "lamina_train_loss", "Training loss of the last finished epoch.", ["job"], registry=REGISTRY,
)
VAL_LOSS = Gauge(
    "lamina_val_loss", "Validation loss of the last finished epoch.", ["job"], registry=REGISTRY,
)
WORKER_BUSY = Gauge(
    "lamina_worker_busy", "1 while this worker runs a job, else 0.", registry=REGISTRY,
)
JOB_RETRIES = Counter(
    "lamina_job_retries_total",
    "Restarts of a job's replicas after a replica died, and resumed attempts.",
    registry=REGISTRY,
)
ATTEMPTS_ENDED = Counter(
    "lamina_worker_jobs_total", "Job attempts this worker ended, by outcome.", ["outcome"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "lamina_jobs_finished_total",
    "Jobs that reached a final state (succeeded, failed, cancelled) on this worker.",
    ["status"], registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "lamina_job_queue_wait_seconds",
    "Time from submission to the first claim of a job (first attempts only).",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    registry=REGISTRY,
)

REDIS_UP = Gauge(
    "lamina_redis_up",
    "1 while this worker's Redis calls succeed, 0 during an outage (Redis unreachable, or "
    "refusing writes at maxmemory).",
    registry=REGISTRY,
)
REDIS_OUTAGES = Counter(
    "lamina_redis_outages_total",
    "Outages this worker saw: Redis unreachable or refusing writes (maxmemory), counted "
    "once each, from the first failed call to the next successful one.",
    registry=REGISTRY,
)
EVENTS_DROPPED = Counter(
    "lamina_worker_events_dropped_total",
    "Batch progress events dropped because Redis stayed unreachable and the buffer was "
    "full (epoch records and state events are never dropped).",
    registry=REGISTRY,
)

# Outcomes of an attempt that end the job (the others requeue it or lost it).
FINAL_OUTCOMES = ("succeeded", "failed", "cancelled")


def forget_job(job_id: str) -> None:
    """Drop the per-job series of ``job_id`` (call when its attempt ends)."""
    for gauge in (TRAIN_LOSS, VAL_LOSS, JOB_SAMPLES_PER_SECOND):
        try:
            gauge.remove(job_id)
        except KeyError:
            pass


def redis_changed(up: bool) -> None:
    """Export a Redis state change (``RedisHealth``'s ``on_change``)."""
    REDIS_UP.set(1 if up else 0)
    if not up:
        REDIS_OUTAGES.inc()


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - a scrape target
    """Serve ``/metrics`` of :data:`REGISTRY` on ``port`` from a daemon thread."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=REGISTRY)

"""Every Prometheus metric of the API process, defined once (``lamina_`` prefix).

Labels are bounded: ``route`` is the route template (``/v1/jobs/{job_id}``),
never a raw path; ``state``/``status`` are job states.

Request metrics live in :data:`REGISTRY` (one per process). With several API processes
behind one port (``lamina api --workers N``), ``PROMETHEUS_MULTIPROC_DIR`` is set before
they start: each process writes its samples to files there and any process's
``/metrics`` merges them all (prometheus_client's multiprocess mode), so a scrape
answers for the whole API whichever process serves it. The job gauges are not
stored: :class:`JobStateCollector` reads them from Redis when Prometheus scrapes, so
they are right whichever API replica is scraped and whatever workers did since.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterator

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lamina_service.queue.models import JobStatus

log = logging.getLogger("lamina_service.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "lamina_http_requests_total", "HTTP requests served by the API.",
    ["method", "route", "status"], registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "lamina_http_request_duration_seconds", "Time to serve one HTTP request.",
    ["method", "route"], registry=REGISTRY,
)
OPEN_STREAMS = Gauge(
    "lamina_open_event_streams", "Event streams (SSE) open on the API.", registry=REGISTRY,
    multiprocess_mode="livesum",
)
JOBS_SUBMITTED = Counter(
    "lamina_jobs_submitted_total", "Jobs accepted and queued.", registry=REGISTRY,
)


class JobStateCollector(Collector):
    """``lamina_jobs{state}``, ``lamina_queue_depth`` and ``lamina_redis_up``, computed
    from Redis at collect time.

    Every state is always exported (0 included). When Redis does not answer, only
    ``lamina_redis_up 0`` is exported, so the scrape still succeeds with the request
    metrics instead of reporting stale job counts.

    Args:
        counts: returns the number of jobs per state (``Producer.counts``).
    """

    def __init__(self, counts: Callable[[], dict[JobStatus, int]]) -> None:
        self.counts = counts

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (GaugeMetricFamily("lamina_jobs", "Jobs by state.", labels=["state"]),
                GaugeMetricFamily("lamina_queue_depth", "Jobs waiting to be claimed."),
                GaugeMetricFamily("lamina_redis_up", "1 when the job store (Redis) answers."))

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        jobs, depth, up = self._families()
        try:
            counts = self.counts()
        except redis.RedisError as exc:
            log.warning("metrics: redis unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status, 0))
        depth.add_metric([], counts.get(JobStatus.QUEUED, 0))
        up.add_metric([], 1)
        yield from (jobs, depth, up)


class _Forward(Collector):
    """Re-exports another registry's metrics (the process-wide request metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        return self.registry.collect()


def _sized_sample_files(folder: str) -> list[str]:
    """The sample files of ``folder`` that another process has finished creating.

    prometheus_client creates a process's file (empty) and then sizes it; a scrape
    that reads it in between fails on the missing header (``struct.error``): one
    such file would make the whole ``/metrics`` a 500. An empty file holds no sample
    yet, and a file gone since the listing holds none any more.
    """
    sized = []
    for path in glob.glob(os.path.join(folder, "*.db")):
        try:
            if os.stat(path).st_size > 0:
                sized.append(path)
        except FileNotFoundError:
            continue
    return sized


class _MultiProcess(multiprocess.MultiProcessCollector):
    """Every API process's samples (prometheus_client's multiprocess mode), without
    the files still being created (:func:`_sized_sample_files`)."""

    def __init__(self, registry: CollectorRegistry, folder: str):
        self.folder = folder  # (set first: registering may collect at once)
        super().__init__(registry, folder)

    def collect(self) -> Iterator[Metric]:
        return iter(self.merge(_sized_sample_files(self.folder), accumulate=True))


def multiprocess_dir() -> str | None:
    """The shared sample directory when running as one of several API processes."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry(counts: Callable[[], dict[JobStatus, int]]) -> CollectorRegistry:
    """What one app's ``/metrics`` exposes: the request metrics and its job gauges."""
    registry = CollectorRegistry(auto_describe=True)
    if multiprocess_dir():
        _MultiProcess(registry, multiprocess_dir())
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(JobStateCollector(counts))
    return registry

"""Every Prometheus metric of the API process, defined once (``lamina_`` prefix).

Labels are bounded: ``route`` is the route template (``/v1/jobs/{job_id}``),
never a raw path; ``state``/``status`` are job states.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "lamina_http_requests_total", "HTTP requests served by the API.",
    ["method", "route", "status"], registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "lamina_http_request_duration_seconds", "Time to serve one HTTP request.",
    ["method", "route"], registry=REGISTRY,
)
JOBS_SUBMITTED = Counter(
    "lamina_jobs_submitted_total", "Jobs accepted and queued.", registry=REGISTRY,
)
JOBS = Gauge("lamina_jobs", "Jobs by state.", ["state"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("lamina_queue_depth", "Jobs waiting to be claimed.", registry=REGISTRY)

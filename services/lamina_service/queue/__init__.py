"""The job queue: Redis keys, job records, the API side (producer) and the worker side
(consumer)."""

from lamina_service.queue.consumer import ClaimedJob, Consumer
from lamina_service.queue.models import JobRecord, JobStatus
from lamina_service.queue.producer import Producer

__all__ = ["ClaimedJob", "Consumer", "JobRecord", "JobStatus", "Producer"]

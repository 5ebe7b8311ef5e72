"""HTTP client of the Lamina training service: ``Client`` and ``Job``.

``client.fit(model, x, y, ...)`` takes the arguments of local ``fit`` and returns a
:class:`Job`; ``job.wait()`` prints the same progress bar and returns a ``History``.
httpx is imported only when a ``Client`` is created.
"""

from lamina.client.client import Client
from lamina.client.errors import (
    APIError,
    ConnectionFailed,
    InvalidRequest,
    JobCancelled,
    JobError,
    JobFailed,
    LaminaError,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
)
from lamina.client.job import Job

__all__ = [
    "APIError", "Client", "ConnectionFailed", "InvalidRequest", "Job", "JobCancelled",
    "JobError", "JobFailed", "LaminaError", "LimitExceeded", "NotFound", "PayloadTooLarge",
    "ServerError", "ServiceUnavailable", "Unauthorized",
]

"""The client's one error hierarchy: every failure of a remote call is a ``LaminaError``.

HTTP errors carry the server's JSON answer (``{"error": {"code", "message", "field"}}``):
``status``, ``code``, ``message`` and ``field`` are attributes of the exception.
"""

from __future__ import annotations

from typing import Any


class LaminaError(Exception):
    """Base class of every error the client raises."""


class ConnectionFailed(LaminaError):
    """The service could not be reached, even after retrying with backoff."""


class APIError(LaminaError):
    """The service answered with an error status.

    Args:
        status: HTTP status code.
        code: the server's machine-readable code (``invalid``, ``not_found``...).
        message: the server's explanation, naming the field and the value received.
        field: dotted path of the offending input, when the server named one.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        where = f" (field {field})" if field else ""
        super().__init__(f"HTTP {status} {code}: {message}{where}")


class InvalidRequest(APIError):
    """422: the job, model or dataset was refused (``invalid``)."""


class LimitExceeded(InvalidRequest):
    """422: a configured limit (parameters, epochs, replicas...) is exceeded."""


class RateLimited(APIError):
    """429: a rate limit or quota (``error.limit`` names it); retried after ``Retry-After``
    until the client's retries run out."""


class Unauthorized(APIError):
    """401: no API key, or an unknown one."""


class NotFound(APIError):
    """404: no such job, dataset or artifact for this API key."""


class PayloadTooLarge(APIError):
    """413: the upload or request body is over the server's cap."""


class ServiceUnavailable(APIError):
    """503: the service's job store is unreachable (retried before being raised)."""


class ServerError(APIError):
    """5xx: the server failed while handling the request."""


class JobError(LaminaError):
    """A job did not succeed; ``job`` is the :class:`~lamina.client.Job`.

    Args:
        job: the job as last read from the service.
        message: what happened.
    """

    def __init__(self, job: Any, message: str) -> None:
        self.job = job
        super().__init__(message)


class JobFailed(JobError):
    """The job ended as failed; ``job.error`` holds the worker's error."""


class JobCancelled(JobError):
    """The job ended as cancelled."""


_BY_CODE = {"limit_exceeded": LimitExceeded, "invalid": InvalidRequest}
_BY_STATUS = {401: Unauthorized, 404: NotFound, 413: PayloadTooLarge, 422: InvalidRequest,
              429: RateLimited, 503: ServiceUnavailable}


def from_response(status: int, body: Any, reason: str = "") -> APIError:
    """Build the typed error for an error answer.

    Args:
        status: HTTP status code.
        body: the decoded JSON body (or anything else when it was not JSON).
        reason: text to use when the body is not the service's error JSON.
    """
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "http_error")
        message = str(error.get("message") or reason)
        field = error.get("field")
    else:
        code, message, field = "http_error", reason or f"HTTP {status}", None
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(status, code, message, field)

"""The service's one error hierarchy; ``api/errors.py`` maps it to HTTP once.

Each class carries its HTTP status and a stable machine-readable ``code``;
messages name the offending field and echo what was received.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: a request the service refuses, with a message for the client.

    Args:
        message: what is wrong, naming the argument and the received value.
        field: dotted path of the offending input (``fit.epochs``), if any.
    """

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    """The input is well-formed JSON/bytes but not acceptable (422)."""

    status_code = 422
    code = "invalid"


class LimitExceeded(InvalidInput):
    """A configured limit (parameters, layers, epochs, ...) is exceeded (422)."""

    code = "limit_exceeded"


class PayloadTooLarge(ServiceError):
    """A request body or upload went over its byte cap (413)."""

    status_code = 413
    code = "payload_too_large"


class Unauthorized(ServiceError):
    """Missing or unknown API key (401)."""

    status_code = 401
    code = "unauthorized"


class NotFound(ServiceError):
    """No such object for this tenant (404); other tenants' objects look the same."""

    status_code = 404
    code = "not_found"


class TooManyRequests(ServiceError):
    """A cap or rate limit refuses the request for now (429, with ``Retry-After``).

    Args:
        message: what was refused, echoing the current count and the cap.
        limit: the name of the setting that refused it (``max_streams_per_tenant``).
        retry_after: seconds after which a retry may succeed (rounded up, >= 1).
    """

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, limit: str, retry_after: float) -> None:
        super().__init__(message, field=None)
        self.limit = limit
        self.retry_after = max(1, int(-(-retry_after // 1)))


class Unavailable(ServiceError):
    """A dependency (Redis, storage) is unreachable; retry later (503)."""

    status_code = 503
    code = "unavailable"

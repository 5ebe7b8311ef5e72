"""Map the service's errors (and framework/Redis errors) to HTTP, once.

Every error answer is ``{"error": {"code", "message", "field"}}``. Redis being
unreachable is a 503 (retry later), never a 500.
"""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from lamina_service.diskio import storage_fault
from lamina_service.errors import ServiceError, TooManyRequests
from lamina_service.queue.producer import OUT_OF_MEMORY_RETRY_AFTER, is_out_of_memory

log = logging.getLogger("lamina_service.api")

_HTTP_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 429: "too_many_requests"}


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None,
                   limit: str | None = None) -> JSONResponse:
    """The JSON error answer (``limit`` names the setting behind a 429)."""
    error = {"code": code, "message": message, "field": field}
    if limit is not None:
        error["limit"] = limit
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if isinstance(exc, TooManyRequests):
        return error_response(429, exc.code, exc.message, None,
                              {"Retry-After": str(exc.retry_after)}, exc.limit)
    return error_response(exc.status_code, exc.code, exc.message, exc.field, headers)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none",
                        "body", "query", "path", "header"})


def _is_tag(part: object) -> bool:
    """True for pydantic's union-member tags in an error location (not field names)."""
    if not isinstance(part, str):
        return False
    return (part.lower() in _TYPE_TAGS or part[:1].isupper()
            or any(c in part for c in "-[(,"))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if not _is_tag(p)]
    field = ".".join(loc) or "body"
    message = first.get("msg", "invalid request")
    if first.get("type") == "extra_forbidden":
        message = f"unknown field {field!r}"
    elif first.get("type") == "json_invalid":
        message = f"malformed JSON: {first.get('ctx', {}).get('error', message)}"
        field = "body"
    elif "input" in first and not isinstance(first["input"], (dict, list)):
        message = f"{message}; received {field}={str(first['input'])[:80]!r}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return error_response(422, "invalid", message, field)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette lists only the first match's)."""
    routes = request.app.router.routes
    return ", ".join(m for m in _METHODS if any(
        route.matches({**request.scope, "method": m})[0] == Match.FULL for route in routes))


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    field = "body" if exc.status_code == 413 else None
    headers = exc.headers
    if exc.status_code == 400:  # FastAPI could not decode the body (e.g. not UTF-8)
        return error_response(422, "invalid", f"malformed request body: {exc.detail}", "body")
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return error_response(exc.status_code, code, str(exc.detail), field, headers)


async def _redis_error(request: Request, exc: redis.RedisError) -> JSONResponse:
    log.warning("redis unavailable: %s", exc)
    return error_response(503, "unavailable", "the job store (Redis) is unreachable; retry",
                          None, {"Retry-After": "1"})


async def _redis_refused(request: Request, exc: redis.ResponseError) -> JSONResponse:
    if not is_out_of_memory(exc):
        return await _unexpected(request, exc)
    log.warning("redis out of memory: %s %s refused", request.method, request.url.path)
    return error_response(
        503, "out_of_memory",
        "the queue's Redis is out of memory (maxmemory reached): nothing was stored; "
        "reads still work; retry later", None,
        {"Retry-After": str(OUT_OF_MEMORY_RETRY_AFTER)}, limit="maxmemory")


async def _os_error(request: Request, exc: OSError) -> JSONResponse:
    """A disk fault no storage call translated: ENOSPC is 507, EIO 503, others 500."""
    storage = getattr(request.app.state, "storage", None)
    fault = storage_fault(exc, "the request", storage.root if storage else None)
    if fault is None:
        return await _unexpected(request, exc)
    return await _service_error(request, fault)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(redis.ConnectionError, _redis_error)
    app.add_exception_handler(redis.TimeoutError, _redis_error)
    app.add_exception_handler(redis.ResponseError, _redis_refused)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)

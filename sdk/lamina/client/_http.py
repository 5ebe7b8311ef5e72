"""HTTP transport: requests with retries and backoff, typed errors, and an SSE reader.

httpx is imported here only, and only when a :class:`Transport` is built, so that
``import lamina`` never needs it.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lamina.client import errors

#: Statuses worth retrying: the service is restarting or its Redis is.
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass
class Event:
    """One Server-Sent Event: ``id``, ``type`` (the ``event:`` field) and decoded ``data``."""

    id: str | None
    type: str
    data: Any


def _httpx():
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "lamina.Client needs httpx: pip install 'lamina[client]' (or pip install httpx)"
        ) from exc
    return httpx


class Transport:
    """Talks to one Lamina API.

    Args:
        url: base URL, e.g. ``http://127.0.0.1:8000``.
        api_key: bearer key, or None when the service runs with auth off.
        timeout: seconds for connecting and for each read.
        retries: attempts after the first one for network errors and 502/503/504.
        backoff: first retry delay in seconds; doubles each time (with jitter), capped
            at ``max_backoff``.
        max_backoff: longest delay between two attempts.
        max_retry_after: longest wait honoured from a ``Retry-After`` header (429 from a
            rate limit or quota, 503); a longer one is cut to this.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30.0,
                 retries: int = 6, backoff: float = 0.25, max_backoff: float = 8.0,
                 max_retry_after: float = 30.0) -> None:
        httpx = _httpx()
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        headers = {"User-Agent": "lamina-client"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._httpx = httpx
        self._client = httpx.Client(base_url=self.url, headers=headers,
                                    timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))

    def close(self) -> None:
        self._client.close()

    def delay(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (0-based): exponential with jitter."""
        base = min(self.max_backoff, self.backoff * (2 ** attempt))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security

    def request(self, method: str, path: str, **kwargs: Any):
        """Send a request, retrying network errors and 502/503/504 (with backoff) and
        429/503 answers that carry ``Retry-After`` (after that wait); raise typed errors.

        Every request the client sends is idempotent (job submissions carry an
        idempotency key, datasets are content-addressed), so retrying is safe.

        Raises:
            ConnectionFailed: still unreachable after the retries.
            APIError: (a subclass of) the server's error answer.
        """
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
            except self._httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise errors.ConnectionFailed(
                        f"{method} {self.url}{path} failed after {attempt + 1} attempts: "
                        f"{type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code < 400:
                    return response
                wait = retry_after(response)
                if wait is not None and attempt < self.retries:
                    # A limit (429) or a restart (503) that says when to come back.
                    time.sleep(min(wait, self.max_retry_after))
                    attempt += 1
                    continue
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    raise error_of(response)
            time.sleep(self.delay(attempt))
            attempt += 1

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request` and decode the JSON answer."""
        return self.request(method, path, **kwargs).json()

    def events(self, path: str, last_event_id: str | None = None,
               on_retry=None) -> Iterator[Event]:
        """Follow an SSE stream until the server ends it, resuming after drops.

        A dropped connection (or a 502/503/504) is retried with backoff and the
        stream resumed with ``Last-Event-ID``, so no event is lost or repeated.

        Args:
            path: the events URL path.
            last_event_id: resume after this event id.
            on_retry: called as ``on_retry(attempt, exc)`` before each retry.

        Raises:
            ConnectionFailed: the stream could not be resumed after the retries.
            APIError: the server refused the request (404, 401...).
        """
        attempt = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                with self._client.stream("GET", path, headers=headers) as response:
                    if response.status_code >= 400:
                        response.read()
                        if (response.status_code not in RETRY_STATUSES
                                or attempt >= self.retries):
                            raise error_of(response)
                        raise _Retry(f"HTTP {response.status_code}")
                    for event in parse_sse(response.iter_lines()):
                        attempt = 0  # progress was made: a later drop starts afresh
                        if event.id:
                            last_event_id = event.id
                        yield event
                return
            except (self._httpx.TransportError, _Retry) as exc:
                if attempt >= self.retries:
                    raise errors.ConnectionFailed(
                        f"event stream {self.url}{path} dropped and could not be resumed "
                        f"after {attempt + 1} attempts: {exc}") from exc
                if on_retry is not None:
                    on_retry(attempt, exc)
                time.sleep(self.delay(attempt))
                attempt += 1


class _Retry(Exception):
    """A retryable status on the event stream."""


def retry_after(response) -> float | None:
    """Seconds a 429/503 answer asks the client to wait (its ``Retry-After``), else None."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(seconds, 0.0)


def error_of(response) -> errors.APIError:
    """The typed error for an error response (its JSON body decoded when possible)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = response.text[:200] if body is None else ""
    return errors.from_response(response.status_code, body, text or response.reason_phrase)


def parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """Decode Server-Sent Events from text lines (comments and keep-alives skipped)."""
    event_id, event_type, data = None, "message", []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = text
                yield Event(event_id, event_type, payload)
            event_id, event_type, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            event_type = value
        elif name == "data":
            data.append(value)

"""Every Redis client of the API and the worker, with one retry policy, built here.

The policy, defined once:

* **Per command** (inside redis-py): a command that meets a ``ConnectionError`` or
  ``TimeoutError`` (a restarted server, a dropped pooled connection, Redis still
  loading its AOF) is retried :data:`RETRIES` times on a fresh connection, after
  an exponential backoff with full jitter (:data:`BACKOFF_BASE` doubling, capped
  at :data:`BACKOFF_CAP`): well under a second in all, so an API request answers
  503 quickly during an outage instead of hanging.
* **Across an outage** (the worker): :class:`RedisHealth` records that Redis is
  down (one WARNING per outage, one INFO on recovery), tells callers whether a
  probe is due, and :meth:`RedisHealth.call_until_up` waits with the same jittered
  backoff, capped at :data:`OUTAGE_CAP`, until a call succeeds. A write refused
  because Redis is at ``maxmemory`` (noeviction) counts as an outage too: through
  :meth:`RedisHealth.call` it raises :class:`OutOfMemory`, a ``ConnectionError``,
  so the worker waits for memory to free exactly as it waits for a restart.

A command retried after Redis executed it but before its reply arrived runs twice.
The queue's scripts are fenced by the attempt's token, so a repeated ``COMMIT`` or
``FAIL`` answers "fenced" (the first one stands), a repeated ``EPOCH`` rewrites the
same row; only ``EVENT`` may publish a duplicate progress event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from lamina_service.queue.producer import is_out_of_memory

log = logging.getLogger("lamina_service.redis")

RETRIES = 3
BACKOFF_BASE = 0.05
BACKOFF_CAP = 0.5
OUTAGE_CAP = 2.0
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0
HEALTH_CHECK_INTERVAL = 10

# What "Redis is unreachable" looks like (BusyLoadingError, "still loading the AOF",
# is a ConnectionError).
UNAVAILABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)

T = TypeVar("T")


class OutOfMemory(redis.ConnectionError):
    """Redis refused a write: ``maxmemory`` reached (noeviction); nothing was written."""


def _backoff(cap: float = BACKOFF_CAP) -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(cap=cap, base=BACKOFF_BASE)


def retry_policy() -> Retry:
    """The per-command retry policy of synchronous clients (a fresh object per client)."""
    return Retry(_backoff(), RETRIES, supported_errors=UNAVAILABLE)


def async_retry_policy() -> AsyncRetry:
    """The same policy for ``redis.asyncio`` clients."""
    return AsyncRetry(_backoff(), RETRIES, supported_errors=UNAVAILABLE)


def connect(url: str, *, decode_responses: bool = True,
            socket_timeout: float = SOCKET_TIMEOUT, **kwargs: Any) -> redis.Redis:
    """A synchronous client of ``url`` with the retry policy and socket timeouts.

    Args:
        url: ``redis://[:password@]host:port/db``.
        decode_responses: return ``str`` instead of ``bytes``.
        socket_timeout: seconds a command may wait for its reply; must exceed the
            longest blocking command the caller sends (e.g. a BLPOP timeout).
        **kwargs: any other ``redis.Redis.from_url`` argument.

    Returns:
        The client (connections are opened lazily, so Redis may be down now).
    """
    return redis.Redis.from_url(
        url, decode_responses=decode_responses, socket_timeout=socket_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT, health_check_interval=HEALTH_CHECK_INTERVAL,
        retry=retry_policy(), retry_on_error=list(UNAVAILABLE), **kwargs)


def connect_async(url: str, *, blocking: bool, max_connections: int,
                  socket_timeout: float = SOCKET_TIMEOUT,
                  decode_responses: bool = True) -> aioredis.Redis:
    """An asyncio client of ``url`` on its own pool, with the retry policy.

    Args:
        url: ``redis://[:password@]host:port/db``.
        blocking: a caller waits for a free connection when all ``max_connections``
            are in use (else the pool raises at once).
        max_connections: size of the pool.
        socket_timeout: seconds a command may wait for its reply.
        decode_responses: return ``str`` instead of ``bytes``.

    Returns:
        The client.
    """
    pool_class = aioredis.BlockingConnectionPool if blocking else aioredis.ConnectionPool
    pool = pool_class.from_url(
        url, decode_responses=decode_responses, socket_timeout=socket_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT, health_check_interval=HEALTH_CHECK_INTERVAL,
        max_connections=max_connections, retry=async_retry_policy(),
        retry_on_error=list(UNAVAILABLE))
    return aioredis.Redis(connection_pool=pool)


class RedisHealth:
    """One process's view of whether Redis answers, shared by its threads.

    Args:
        on_change: called with True/False when Redis comes back / goes away
            (e.g. to set a gauge and count outages).
        name: what the log lines call the server.
    """

    def __init__(self, on_change: Callable[[bool], None] | None = None,
                 name: str = "Redis") -> None:
        self.on_change = on_change
        self.name = name
        self.outages = 0
        self._up: bool | None = None
        self._failures = 0
        self._down_since = 0.0
        self._next_probe = 0.0
        self._backoff = _backoff(OUTAGE_CAP)
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        """False from the first failed call until the next successful one."""
        return self._up is not False

    def ok(self) -> None:
        """Record a successful call (logs the recovery once)."""
        with self._lock:
            was, self._up, self._failures = self._up, True, 0
            down_for = time.monotonic() - self._down_since
        if was is not True:
            if was is False:
                log.info("%s is reachable again after %.1fs", self.name, down_for)
            if self.on_change is not None:
                self.on_change(True)

    def failed(self, exc: BaseException) -> float:
        """Record a call that found Redis unreachable or full (logs the outage once).

        Returns:
            Seconds to wait before the next attempt (jittered, growing, capped).
        """
        with self._lock:
            was, self._up = self._up, False
            self._failures += 1
            delay = self._backoff.compute(self._failures)
            self._next_probe = time.monotonic() + delay
            if was is not False:
                self._down_since = time.monotonic()
                self.outages += 1
        if was is not False:
            log.warning("%s is unavailable (%s: %s); waiting for it, retrying with backoff",
                        self.name, type(exc).__name__, exc)
            if self.on_change is not None:
                self.on_change(False)
        return delay

    def should_try(self) -> bool:
        """True when Redis is up or a probe is due (callers skip optional calls else)."""
        return self._up is not False or time.monotonic() >= self._next_probe

    def delay(self) -> float:
        """Seconds until the next probe is due (0 when Redis is up)."""
        return 0.0 if self._up is not False else max(0.0, self._next_probe - time.monotonic())

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, recording the outcome.

        Raises:
            redis.ConnectionError: Redis is unreachable (re-raised), or
                :class:`OutOfMemory` when it refused a write at ``maxmemory``.
            redis.TimeoutError: Redis did not answer in time (re-raised).
        """
        try:
            result = fn(*args, **kwargs)
        except UNAVAILABLE as exc:
            self.failed(exc)
            raise
        except redis.ResponseError as exc:
            if not is_out_of_memory(exc):
                raise
            self.failed(exc)
            raise OutOfMemory(str(exc)) from exc
        self.ok()
        return result

    def call_until_up(self, fn: Callable[..., T], *args: Any,
                      stop: threading.Event | None = None, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried with backoff for as long as Redis is down.

        Args:
            fn: the call (it must be safe to repeat: a fenced script is).
            *args: its arguments.
            stop: when set (e.g. the worker is shutting down), give up.
            **kwargs: its keyword arguments.

        Returns:
            What ``fn`` returned.

        Raises:
            redis.ConnectionError: Redis was down and ``stop`` got set
                (``redis.TimeoutError`` likewise).
        """
        while True:
            try:
                return self.call(fn, *args, **kwargs)
            except UNAVAILABLE:
                if stop is not None and stop.is_set():
                    raise
                wait = self.delay()
                if stop is not None:
                    stop.wait(wait)
                else:
                    time.sleep(wait)

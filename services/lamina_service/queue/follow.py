"""Async read side of the queue for the event loop: read jobs, follow a job's (or a
tenant's) events.

Used by the API's event streams: one blocking ``XREAD`` per open stream on a
``redis.asyncio`` client, so an idle follower costs one idle socket and no
thread. Cancelling the awaiting task (the client went away) drops its connection.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable

import redis.asyncio as aioredis

from lamina_service.queue import keys, scripts
from lamina_service.queue.models import JobRecord, JobStatus
from lamina_service.queue.producer import Event, Page


class Follower:
    """Tenant-checked async reads of jobs, their status and their events.

    Two clients, so that open streams cannot take the connections short reads need:
    ``short`` for reads that answer at once, ``stream`` for the blocking reads of
    :meth:`events`. An asyncio Redis connection belongs to the event loop that opened
    it, so the clients are made per running loop (one in a server process; tests may
    run several loops).

    Args:
        make_client: ``make_client("short")`` / ``make_client("stream")`` return a new
            ``redis.asyncio.Redis(..., decode_responses=True)``; the stream one with a
            socket timeout longer than any ``block_ms`` passed to :meth:`events`.
    """

    def __init__(self, make_client: Callable[[str], aioredis.Redis]) -> None:
        self._make_client = make_client
        self._scripts: dict[tuple[int, str], object] = {}
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = weakref.WeakKeyDictionary()

    def _client(self, kind: str) -> aioredis.Redis:
        clients = self._clients.setdefault(asyncio.get_running_loop(), {})
        if kind not in clients:
            clients[kind] = self._make_client(kind)
        return clients[kind]

    @property
    def client(self) -> aioredis.Redis:
        """The running event loop's client for reads that answer at once."""
        return self._client("short")

    async def aclose(self) -> None:
        """Close the running loop's clients (the others die with their loops)."""
        for client in self._clients.pop(asyncio.get_running_loop(), {}).values():
            await client.aclose()

    async def status(self, tenant: str, job_id: str) -> JobStatus | None:
        """The job's status, or None when it does not exist or is another tenant's."""
        tenant_of, status = await self.client.hmget(keys.job_key(job_id), "tenant", "status")
        if tenant_of != tenant or status is None:
            return None
        return JobStatus(status)

    def _script(self, name: str):
        """Script ``name`` of :mod:`lamina_service.queue.scripts` on this loop's client."""
        client = self.client
        script = self._scripts.get((id(client), name))
        if script is None:
            script = self._scripts[id(client), name] = client.register_script(
                getattr(scripts, name))
        return script

    async def get(self, tenant: str, job_id: str) -> JobRecord | None:
        """The job with its history, None when it does not exist or is another tenant's.

        One script answers record and history as one JSON string.
        """
        reply = await self._script("JOB")(keys=[], args=[keys.PREFIX, tenant, job_id])
        if not reply:
            return None
        found = json.loads(reply)
        history = found["history"] or {}  # cjson encodes an empty table as {}
        return JobRecord.from_redis(found["fields"], history)

    async def list_jobs(self, tenant: str, status: JobStatus | None = None, offset: int = 0,
                        limit: int = 50) -> Page:
        """A tenant's jobs, newest first, without specs (as :meth:`Producer.list_jobs`),
        read by one script that answers the page as one JSON string."""
        reply = json.loads(await self._script("PAGE")(keys=[], args=[
            keys.PREFIX, tenant, status.value if status else "", offset, limit]))
        items = reply["items"] or []  # cjson encodes an empty table as {}
        return Page(items=[JobRecord.from_redis(fields) for fields in items],
                    next_offset=offset + limit if reply["more"] else None)

    async def events(self, job_id: str, after: str, block_ms: int | None = None) -> list[Event]:
        """Events of ``job_id`` after stream id ``after``, waiting up to ``block_ms`` for one.

        The caller has checked the tenant (:meth:`status`) before following.
        """
        return await self._read(keys.job_events_key(job_id), after, block_ms)

    async def tenant_events(self, tenant: str, after: str,
                            block_ms: int | None = None) -> list[Event]:
        """Changes of ``tenant``'s jobs after stream id ``after``, waiting up to
        ``block_ms``: ``state`` events ``{job_id, status}`` and ``epoch`` events
        ``{job_id, epoch}`` (see ``tenant_event`` in :mod:`lamina_service.queue.scripts`)."""
        return await self._read(keys.tenant_events_key(tenant), after, block_ms)

    async def tenant_events_head(self, tenant: str) -> str:
        """Id of ``tenant``'s newest job change, ``"0-0"`` when there is none: where a
        follower that wants only new changes starts."""
        newest = await self.client.xrevrange(keys.tenant_events_key(tenant), count=1)
        return newest[0][0] if newest else "0-0"

    async def _read(self, key: str, after: str, block_ms: int | None) -> list[Event]:
        client = self._client("stream") if block_ms else self.client
        reply = await client.xread({key: after}, count=500, block=block_ms)
        return [Event(entry_id, fields["type"], json.loads(fields["data"]))
                for _, entries in reply or [] for entry_id, fields in entries]

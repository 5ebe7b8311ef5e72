"""Script registration and argument packing shared by the producer and the consumer."""

from __future__ import annotations

import time

import redis

from lamina_service.config import Settings
from lamina_service.queue import keys, scripts


class Scripts:
    """The Lua scripts of :mod:`lamina_service.queue.scripts` bound to one client.

    Args:
        client: a ``redis.Redis`` created with ``decode_responses=True``.
        settings: supplies the events cap and TTLs.
    """

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._scripts = {
            name: client.register_script(getattr(scripts, name))
            for name in (
                "SUBMIT", "CANCEL", "CLAIM", "HEARTBEAT", "EVENT", "EPOCH",
                "COMMIT", "FAIL", "REQUEUE", "CANCELLED", "LIST",
            )
        }

    def run(self, name: str, *args: object):
        """Run script ``name`` with the common arguments followed by ``args``."""
        argv = [
            keys.PREFIX,
            repr(time.time()),
            self.settings.events_maxlen,
            self.settings.job_ttl_seconds,
            *args,
        ]
        return self._scripts[name](keys=[], args=argv)

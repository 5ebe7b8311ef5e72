"""Per-tenant request rate limit: a token bucket in Redis, one atomic script per request."""

from __future__ import annotations

import time

from lamina_service.config import Quotas
from lamina_service.queue import keys, scripts
from lamina_service.queue.follow import Follower


class RateLimiter:
    """``quotas.rate_per_second`` sustained, ``quotas.rate_burst`` at once, per tenant.

    The bucket lives in Redis (:data:`lamina_service.queue.scripts.RATE`), so every API
    process behind one port shares it.

    Args:
        follower: supplies the event loop's async Redis client.
        quotas: the rate and burst (rate 0 turns the limit off).
    """

    def __init__(self, follower: Follower, quotas: Quotas) -> None:
        self.follower = follower
        self.rate = quotas.rate_per_second
        self.burst = max(1, quotas.rate_burst)
        self._scripts: dict[int, object] = {}

    @property
    def enabled(self) -> bool:
        """False when ``rate_per_second`` is 0."""
        return self.rate > 0

    async def take(self, tenant: str) -> float:
        """Spend one token of ``tenant``'s bucket.

        Returns:
            0.0 when the request may go on, else seconds until a token is back.
        """
        if not self.enabled:
            return 0.0
        client = self.follower.client
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(scripts.RATE)
        allowed, wait = await script(keys=[], args=[keys.PREFIX, repr(time.time()), tenant,
                                                    repr(self.rate), self.burst])
        return 0.0 if int(allowed) else float(wait)

"""Batch reads of stored job facts for read-mostly views (the web dashboard).

Every Redis key is built in :mod:`lamina_service.queue.keys` and read only inside this
package; views outside it call these functions.
"""

from __future__ import annotations

import redis

from lamina_service.queue import keys


def specs_and_histories(client: redis.Redis, spec_ids: list[str],
                        history_ids: list[str]) -> tuple[list[str | None], list[dict]]:
    """The stored spec JSON of ``spec_ids`` and the epoch-history hashes of
    ``history_ids`` (epoch -> JSON logs), in one round trip, in the order given.

    Args:
        client: a ``redis.Redis`` created with ``decode_responses=True``.
        spec_ids: jobs whose spec is wanted (None for a job that no longer exists).
        history_ids: jobs whose history is wanted (empty for a job without epochs).
    """
    pipe = client.pipeline(transaction=False)
    for job_id in spec_ids:
        pipe.hget(keys.job_key(job_id), "spec")
    for job_id in history_ids:
        pipe.hgetall(keys.job_history_key(job_id))
    replies = pipe.execute()
    return replies[:len(spec_ids)], replies[len(spec_ids):]

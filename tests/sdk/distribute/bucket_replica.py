"""A replica function for ``lamina.distribute.local.launch`` in test_buckets.py.

It lives in its own module (on ``sys.path`` via the test) because spawned replicas
import their function by name, which pytest's importlib mode does not allow for a test
module.
"""

from __future__ import annotations

from lamina.distribute import get_strategy, local


def fit_and_count(*args, **kwargs) -> dict:
    """``local.fit_replica(*args)`` plus how the replica reduced its gradients."""
    result = local.fit_replica(*args, **kwargs)
    strategy = get_strategy()
    buckets = strategy._buckets
    result["bucket_cap_mb"] = strategy.bucket_cap_mb
    result["buckets"] = 0 if buckets is None else buckets.count
    result["staged"] = bool(buckets is not None and buckets._own is None)
    return result

"""Fixtures of the fault-injection tests: a Redis of their own that they may kill.

Every test under ``tests/chaos`` carries the ``chaos`` marker (CI runs them); tests
marked ``soak`` run only with ``LAMINA_SOAK=1`` (``make soak``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    soak_skip = pytest.mark.skip(reason="soak runs only with LAMINA_SOAK=1 (make soak)")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.chaos)
            if "soak" in item.keywords and os.environ.get("LAMINA_SOAK") != "1":
                item.add_marker(soak_skip)


@pytest.fixture
def aof_redis():
    """A private ``redis-server`` with AOF (``appendfsync always``) for one test.

    Unlike the session's server, tests may ``kill()`` it and ``start()`` it again on the
    same port and data directory, as an operator's restart would.
    """
    from lamina_service.redis_server import RedisServer

    server = RedisServer(appendonly=True).start()
    yield server
    server.cleanup()

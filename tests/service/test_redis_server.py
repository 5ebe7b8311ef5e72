"""The redis-server child of the tests and ``lamina up``: ready means *it* answers."""

from __future__ import annotations

import pytest


def test_a_port_taken_by_another_redis_is_not_taken_for_ready(redis_server):
    """The port was free when picked and another server took it before ours bound it:
    PONG comes from that one while ours exits on EADDRINUSE. Start-up fails instead of
    handing out the other server (whose data the caller would then flush)."""
    from lamina_service.redis_server import RedisServer

    ours = RedisServer(port=redis_server.port)
    with pytest.raises(RuntimeError, match="redis-server exited with code 1"):
        ours.start(timeout=10)
    ours.cleanup()


def test_a_started_server_is_this_process(tmp_path):
    import redis

    from lamina_service.redis_server import RedisServer

    server = RedisServer(password="secret", data_dir=str(tmp_path)).start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.info("server")["process_id"] == server.process.pid
        client.close()
    finally:
        server.cleanup()

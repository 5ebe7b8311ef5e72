"""The chaos fixture's Redis survives SIGKILL + restart with its acknowledged writes."""

import redis


def test_aof_redis_keeps_acknowledged_writes_across_kill_and_restart(aof_redis):
    client = redis.Redis.from_url(aof_redis.url)
    client.set("k", "v")
    client.close()
    aof_redis.kill()
    aof_redis.start()
    client = redis.Redis.from_url(aof_redis.url)
    assert client.get("k") == b"v"
    client.close()

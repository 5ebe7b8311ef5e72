"""Redis under memory pressure: ``maxmemory`` reached with the ``noeviction`` policy.

Every write the API makes is refused with a 503 JSON error and ``Retry-After``, nothing
is half-written (Redis checks memory only before a script's first write), reads keep
working, and once memory frees the same submission succeeds exactly once. All against a
real ``redis-server`` (the chaos fixture's AOF one) and the API over real HTTP.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from lamina_service.queue import keys
from lamina_service.queue.producer import OUT_OF_MEMORY_RETRY_AFTER
from tests.service.conftest import AUTH_A, LiveServer, job_body, npz_bytes

FILLER_DB = 1  # maxmemory is server-wide; the filler stays out of the queue's database


def fill_to_maxmemory(url: str, headroom: int = 2 * 2**20) -> redis.Redis:
    """Set ``maxmemory`` a little above what is used and write until Redis refuses.

    The refusal counts the refused command's own buffer, freed right after; so that every
    later write is refused too, the limit is then pinned 1 MB under what is used.

    Returns:
        A client on the filler database (close it after freeing memory).
    """
    filler = redis.Redis.from_url(url, db=FILLER_DB)
    filler.config_set("maxmemory-policy", "noeviction")
    filler.config_set("maxmemory", int(filler.info("memory")["used_memory"]) + headroom)
    value = b"x" * 65536
    for i in range(10 * headroom // len(value)):
        try:
            filler.set(f"filler:{i}", value)
        except redis.exceptions.OutOfMemoryError:
            used = int(filler.info("memory")["used_memory"])
            filler.config_set("maxmemory", used - 2**20)
            return filler
    raise AssertionError("Redis never reached maxmemory")


def free_memory(filler: redis.Redis) -> None:
    """What an operator does: lift the limit (``CONFIG SET maxmemory 0``)."""
    filler.config_set("maxmemory", 0)
    filler.close()


def posts_refused() -> float:
    """POSTs (a dataset's, a job's) answered 503 by this process's API (each counted
    after its answer went out)."""
    from lamina_service import metrics

    return sum(sample.value for family in metrics.REGISTRY.collect()
               for sample in family.samples
               if sample.name == "lamina_http_requests_total"
               and sample.labels.get("method") == "POST"
               and sample.labels.get("status") == "503")


def free_after_refusal(filler: redis.Redis, before: float, stop: threading.Event,
                       timeout: float = 60.0) -> None:
    """Free memory once the in-process API has refused a POST (their count went past
    ``before``), or ``stop`` is set, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while posts_refused() == before and not stop.is_set() \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    free_memory(filler)


def snapshot(client: redis.Redis) -> dict[str, object]:
    """Every key of the queue's database with its value (streams by their entries), but
    the rate limiter's buckets, which expire on their own."""
    out: dict[str, object] = {}
    for key in client.keys("*"):
        if key.startswith(keys.rate_key("")):
            continue
        kind = client.type(key)
        if kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == "stream":
            out[key] = client.xrange(key)
        elif kind == "string":
            out[key] = client.get(key)
        else:
            out[key] = kind
    return out


def assert_out_of_memory(reply: httpx.Response) -> None:
    assert reply.status_code == 503, reply.text
    error = reply.json()["error"]
    assert error["code"] == "out_of_memory" and error["limit"] == "maxmemory"
    assert "out of memory (maxmemory reached)" in error["message"]
    assert reply.headers["Retry-After"] == str(OUT_OF_MEMORY_RETRY_AFTER)


@pytest.fixture
def settings(aof_redis, tmp_path):
    from lamina_service.config import Settings

    return Settings(redis_url=aof_redis.url, storage_root=str(tmp_path / "storage"),
                    api_keys={"key-a": "alice", "key-b": "bob"}, lease_seconds=30)


@pytest.fixture
def rclient(aof_redis):
    client = redis.Redis.from_url(aof_redis.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def api(settings):
    from lamina_service.api import create_app

    with LiveServer(create_app(settings)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def test_writes_answer_503_nothing_is_half_written_reads_work_and_all_recovers(
        api, aof_redis, rclient, settings):
    dataset_id = api.post("/v1/datasets", content=npz_bytes(), headers=AUTH_A).json()["id"]
    first = api.post("/v1/jobs", json=job_body(dataset_id, idempotency_key="first"),
                     headers=AUTH_A).json()
    filler = fill_to_maxmemory(aof_redis.url)
    try:
        before = snapshot(rclient)
        new_data = npz_bytes(n=24)

        # Every write is refused, with the reason and when to come back.
        assert_out_of_memory(api.post("/v1/jobs", json=job_body(dataset_id,
                                                                idempotency_key="second"),
                                      headers=AUTH_A))
        assert_out_of_memory(api.post("/v1/jobs", json=job_body(dataset_id), headers=AUTH_A))
        assert_out_of_memory(api.post(f"/v1/jobs/{first['id']}/cancel", headers=AUTH_A))
        upload = api.post("/v1/datasets", content=new_data, headers=AUTH_A)
        assert_out_of_memory(upload)
        assert snapshot(rclient) == before, "a refused write left something in Redis"
        datasets_dir = Path(settings.storage_root) / "datasets"
        assert not list(datasets_dir.glob(".upload-*")), "the upload's temp file was left"

        # The refused upload's file is not the tenant's: unreachable by id.
        from hashlib import sha256

        new_id = "d_" + sha256(new_data).hexdigest()
        assert api.get(f"/v1/datasets/{new_id}", headers=AUTH_A).status_code == 404
        assert api.post("/v1/jobs", json=job_body(new_id), headers=AUTH_A).status_code == 404

        # Reads keep working (each request's rate-limit token is a write, which gives way),
        # and a retry of a submission stored before answers from the idempotency key.
        assert settings.quotas.rate_per_second > 0
        assert api.get("/readyz").status_code == 200
        listing = api.get("/v1/jobs", headers=AUTH_A)
        assert listing.status_code == 200 and [j["id"] for j in listing.json()["items"]] == [
            first["id"]]
        job = api.get(f"/v1/jobs/{first['id']}", headers=AUTH_A)
        assert job.status_code == 200 and job.json()["status"] == "queued"
        assert api.get(f"/v1/datasets/{dataset_id}", headers=AUTH_A).status_code == 200
        again = api.post("/v1/jobs", json=job_body(dataset_id, idempotency_key="first"),
                         headers=AUTH_A)
        assert again.status_code == 202 and again.json()["id"] == first["id"]
        assert again.json()["created"] is False
        assert snapshot(rclient) == before
    finally:
        free_memory(filler)

    # Memory is back: the same submission succeeds, exactly once.
    second = api.post("/v1/jobs", json=job_body(dataset_id, idempotency_key="second"),
                      headers=AUTH_A)
    assert second.status_code == 202 and second.json()["created"] is True
    repeat = api.post("/v1/jobs", json=job_body(dataset_id, idempotency_key="second"),
                      headers=AUTH_A)
    assert repeat.json() == {**second.json(), "created": False}
    assert api.post("/v1/datasets", content=new_data, headers=AUTH_A).status_code == 201
    assert api.get(f"/v1/datasets/{new_id}", headers=AUTH_A).status_code == 200
    ids = [j["id"] for j in api.get("/v1/jobs", headers=AUTH_A).json()["items"]]
    assert ids == [second.json()["id"], first["id"]]
    assert rclient.zcard(keys.status_index_key("queued")) == 2
    cancelled = api.post(f"/v1/jobs/{first['id']}/cancel", headers=AUTH_A)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_a_job_record_that_crosses_maxmemory_is_whole_and_the_next_is_refused_whole(
        aof_redis, rclient, settings):
    from lamina_service.queue import Producer
    from lamina_service.queue.producer import is_out_of_memory

    producer = Producer(rclient, settings)
    producer.submit("alice", {}, dataset_id="d_x")  # the script is loaded and cached
    spec = {"model": {"blob": "w" * (2 * 2**20)}}
    rclient.config_set("maxmemory-policy", "noeviction")
    # Measured on Redis 6.2: a 2 MB spec takes ~4.5 MB at the script's start (the request
    # buffers) and peaks at ~9.4 MB (Lua's and the hash's copies); the limit is between.
    limit = int(rclient.info("memory")["used_memory"]) + 6 * 2**20 + 512 * 1024
    rclient.config_set("maxmemory", limit)
    try:
        # Under the limit when it starts, the script's own copies of the spec take Redis
        # over it: Redis lets a script that has written go on, so the record is complete.
        job = producer.submit("alice", spec, dataset_id="d_x", idempotency_key="big")
        assert rclient.info("memory")["used_memory_peak"] > limit
        record = rclient.hgetall(keys.job_key(job.id))
        assert record["status"] == "queued" and record["spec"].startswith('{"model"')
        assert rclient.zscore(keys.tenant_jobs_key("alice"), job.id) is not None
        assert rclient.zscore(keys.status_index_key("queued"), job.id) is not None
        assert rclient.xlen(keys.job_events_key(job.id)) == 1
        assert rclient.get(keys.idempotency_key("alice", "big")) == job.id
        # Now over it for good: every write is refused before it starts.
        rclient.config_set("maxmemory", int(rclient.info("memory")["used_memory"]) - 2**20)
        before = snapshot(rclient)

        with pytest.raises(redis.ResponseError) as refused:
            producer.submit("alice", {"model": {}}, dataset_id="d_x", idempotency_key="next")
        assert is_out_of_memory(refused.value)
        with pytest.raises(redis.exceptions.OutOfMemoryError) as refused:
            producer.add_dataset("alice", "d_y", {"id": "d_y"})
        assert is_out_of_memory(refused.value)
        assert not is_out_of_memory(redis.ResponseError("WRONGTYPE Operation against a key"))
        assert snapshot(rclient) == before
        assert producer.submit("alice", {}, dataset_id="d_x", idempotency_key="big").id == job.id
    finally:
        rclient.config_set("maxmemory", 0)
    after = producer.submit("alice", {"model": {}}, dataset_id="d_x", idempotency_key="next")
    assert after.created and producer.list_jobs("alice").items[0].id == after.id
    assert len(producer.list_jobs("alice").items) == 3


def test_the_client_waits_out_the_503_and_submits_once_when_memory_frees(
        api, aof_redis, settings):
    import lamina

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = lamina.Sequential([lamina.Input(shape=(3,)), lamina.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    url = str(api.base_url).rstrip("/")
    with lamina.Client(url, api_key="key-a", timeout=10, retries=4) as client:
        client.upload({"x": x, "y": y})  # stored before the pressure; fit finds it
        filler = fill_to_maxmemory(aof_redis.url)
        # Memory frees once the API refused fit's first POST (its dataset's), not after a
        # fixed 1 s, which a loaded machine's client.fit could take before that POST.
        refused, done = posts_refused(), threading.Event()
        freed = threading.Thread(target=free_after_refusal, args=(filler, refused, done))
        started = time.monotonic()
        freed.start()
        try:
            job = client.fit(model, x, y, epochs=1, batch_size=8)
        finally:
            done.set()
            freed.join()
        waited = time.monotonic() - started
        jobs = client.jobs()
    # The first POST was refused (503 with Retry-After); the retry went through.
    assert posts_refused() == refused + 1
    assert waited >= OUT_OF_MEMORY_RETRY_AFTER - 0.5, (
        f"the client did not wait for Retry-After ({waited:.1f} s)")
    assert [j.id for j in jobs] == [job.id]

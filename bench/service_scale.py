"""The queue at 100,000 queued jobs: submission, listing, claim latency and Redis memory.

Submits ``--jobs`` jobs from ``--tenants`` tenants (spec of a small Sequential model, as
the SDK sends), reports Redis ``used_memory`` per job, then times ``GET``-equivalent
listings (first page, a page deep in the index, by status) and ``--claims`` claims with
the whole backlog queued. No API process: these are the queue calls the routes make.

Run: ``python bench/service_scale.py [--jobs 100000] [--tenants 10] [--claims 1000]``.
"""

from __future__ import annotations

import argparse
import os
import time


def spec() -> dict:
    dense = [{"module": "keras.layers", "class_name": "Dense", "registered_name": None,
              "config": {"name": f"d{k}", "units": 32, "activation": "relu"}} for k in range(2)]
    layers = [{"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
               "config": {"name": "in", "batch_shape": [None, 8], "dtype": "float32"}}, *dense]
    return {"model": {"module": "keras", "class_name": "Sequential", "registered_name": None,
                      "config": {"name": "m", "layers": layers}},
            "compile": {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]},
            "fit": {"epochs": 5, "batch_size": 32}, "callbacks": [], "replicas": 1,
            "priority": "normal", "dataset_id": "d_" + "0" * 64, "name": "scale"}


def timed(fn, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2] * 1e3, samples[int(len(samples) * 0.99)] * 1e3


def main() -> None:
    import redis

    from lamina_service.config import Settings
    from lamina_service.queue import Consumer, JobStatus, Producer
    from lamina_service.redis_server import RedisServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--claims", type=int, default=1000)
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        settings = Settings(redis_url=server.url, storage_root=".")
        producer = Producer(client, settings)
        base = client.info("memory")["used_memory"]
        body = spec()
        submit = []
        start = time.perf_counter()
        for i in range(args.jobs):
            t0 = time.perf_counter()
            producer.submit(f"tenant{i % args.tenants}", body, dataset_id=body["dataset_id"])
            submit.append(time.perf_counter() - t0)
        wall = time.perf_counter() - start
        used = client.info("memory")["used_memory"] - base
        submit.sort()
        print(f"load1 {os.getloadavg()[0]:.2f}; {args.jobs} jobs, {args.tenants} tenants "
              f"in {wall:.1f} s ({args.jobs / wall:.0f}/s); submit p50 "
              f"{submit[len(submit) // 2] * 1e3:.2f} ms p99 "
              f"{submit[int(len(submit) * .99)] * 1e3:.2f} ms")
        print(f"Redis memory: {used / 2**20:.1f} MiB, {used / args.jobs:.0f} bytes per queued job "
              f"(record, indexes, ready list, one state event)")
        deep = args.jobs // args.tenants // 2
        for name, call in [
            ("list first page (50)", lambda: producer.list_jobs("tenant0")),
            (f"list at offset {deep}", lambda: producer.list_jobs("tenant0", offset=deep)),
            ("list status=queued", lambda: producer.list_jobs("tenant0", JobStatus.QUEUED)),
            ("get one job", lambda: producer.get("tenant0", producer.list_jobs(
                "tenant0", limit=1).items[0].id)),
            ("counts (metrics scrape)", producer.counts),
        ]:
            p50, p99 = timed(call, 200)
            print(f"{name:<28} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
        consumer = Consumer(client, settings, "bench")
        claimed = []
        p50, p99 = timed(lambda: claimed.append(consumer.claim(block_ms=0)), args.claims)
        tenants = {job.tenant for job in claimed[:args.tenants]}
        print(f"{'claim':<28} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  (first {args.tenants} "
              f"claims from {len(tenants)} tenants)")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()

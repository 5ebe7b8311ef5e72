"""Cost of durable acceptance: one job submission (the ``SUBMIT`` script) against Redis
with AOF off, ``appendfsync everysec`` and ``appendfsync always``.

One client submits ``--jobs`` jobs in a row (so each waits for its own write), then 8
threads do the same at once (Redis groups their writes into one fsync). Prints p50/p99
per submission and the machine's load (the disk and the cores are shared).

Run: ``python bench/service_durability.py [--jobs 2000]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time


def run(policy: str, jobs: int, threads: int) -> tuple[float, float, float]:
    import redis

    from lamina_service.config import Settings
    from lamina_service.queue import Producer
    from lamina_service.redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="lamina-aof-", dir=os.getcwd()) as data:
        server = RedisServer(appendonly=policy != "off", data_dir=data,
                             appendfsync="always" if policy == "off" else policy).start()
        try:
            settings = Settings(redis_url=server.url, storage_root=data)
            latencies: list[float] = []

            def submit(n: int) -> None:
                producer = Producer(redis.Redis.from_url(server.url, decode_responses=True),
                                    settings)
                spec = {"model": {"class_name": "Sequential"}, "fit": {"epochs": 1}}
                for i in range(n):
                    start = time.perf_counter()
                    producer.submit(f"t{i % 10}", spec, dataset_id="d_bench")
                    latencies.append(time.perf_counter() - start)

            start = time.perf_counter()
            workers = [threading.Thread(target=submit, args=(jobs // threads,))
                       for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            wall = time.perf_counter() - start
        finally:
            server.cleanup()
    latencies.sort()
    return (latencies[len(latencies) // 2] * 1e3, latencies[int(len(latencies) * 0.99)] * 1e3,
            len(latencies) / wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'AOF':<9} {'clients':>7} {'load1':>5} {'p50 ms':>7} {'p99 ms':>7} {'jobs/s':>7}")
    for threads in (1, 8):
        for policy in ("off", "everysec", "always"):
            load = os.getloadavg()[0]
            p50, p99, rate = run(policy, args.jobs, threads)
            print(f"{policy:<9} {threads:>7} {load:>5.2f} {p50:>7.2f} {p99:>7.2f} {rate:>7.0f}",
                  flush=True)


if __name__ == "__main__":
    main()

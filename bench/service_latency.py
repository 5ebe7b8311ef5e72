"""Latency and throughput of the control plane: job submission and status reads.

Starts a real ``redis-server`` (:class:`lamina_service.redis_server.RedisServer`), the API
under uvicorn in a subprocess (one worker, no access log, auth on), uploads one dataset,
then runs a second process that drives the API over loopback with httpx at a fixed
concurrency: ``--requests`` submissions (``POST /v1/jobs``: schema, limits, model
pre-check and build, one Lua script), then as many status reads (``GET /v1/jobs/{id}``)
of those jobs. No worker runs, so the queue only grows. Each round prints p50/p99
latency and throughput; the machine's load average is shown because the load generator
and the server share its cores.

With ``wrk`` on PATH (Debian package ``wrk``) and ``--wrk``, the phases are driven by
wrk instead (C load generator, ``--connections`` 32 by default, ``--duration`` seconds
each): ``GET /v1/jobs/{id}``, ``POST /v1/jobs`` (a Lua script sets the body), then with
``--streams N`` open event streams (held by a helper process) ``GET /v1/jobs`` and
``/healthz`` again. The API runs with rate limits and queue quotas off
(``LAMINA_QUOTAS__RATE_PER_SECOND=0``; ``--rate`` turns it on), ``--api-workers``
processes, Redis AOF per ``--appendfsync``.

Run: ``python bench/service_latency.py [--concurrency 8] [--requests 1000] [--rounds 3]``
or ``python bench/service_latency.py --wrk [--connections 32] [--duration 10] [--streams 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def job_body(dataset_id: str, i: int) -> dict:
    dense = [{"class_name": "Dense", "config": {"name": f"d{k}", "units": 32,
                                                "activation": "relu"}} for k in range(2)]
    layers = [{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 8]}},
              *dense, {"class_name": "Dense", "config": {"name": "out", "units": 1}}]
    return {"model": {"class_name": "Sequential", "config": {"name": "m", "layers": layers}},
            "compile": {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]},
            "fit": {"epochs": 5, "batch_size": 32, "validation_split": 0.2},
            "dataset_id": dataset_id, "name": f"bench-{i}"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _phase(http: httpx.AsyncClient, requests: list[tuple[str, str, dict | None]],
                 concurrency: int, expect: int) -> dict:
    latencies: list[float] = []
    bodies: list[dict] = []
    errors = 0
    queue = iter(requests)

    async def client() -> None:
        nonlocal errors
        for method, url, body in queue:
            start = time.perf_counter()
            reply = await http.request(method, url, json=body)
            latencies.append(time.perf_counter() - start)
            if reply.status_code != expect:
                errors += 1
            else:
                bodies.append(reply.json())

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return {"n": len(latencies), "errors": errors, "wall": wall, "bodies": bodies,
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "throughput": len(latencies) / wall}


async def load(url: str, dataset_id: str, concurrency: int, n: int) -> dict:
    """The load process: warm up, then submissions, then status reads of those jobs."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits,
                                 timeout=30) as http:
        warm = [("POST", "/v1/jobs", job_body(dataset_id, -i)) for i in range(20)]
        await _phase(http, warm, concurrency, 202)
        submit = await _phase(http, [("POST", "/v1/jobs", job_body(dataset_id, i))
                                     for i in range(n)], concurrency, 202)
        ids = [body["id"] for body in submit.pop("bodies")]
        read = await _phase(http, [("GET", f"/v1/jobs/{ids[i % len(ids)]}", None)
                                   for i in range(n)], concurrency, 200)
        read.pop("bodies")
    return {"submit": submit, "read": read}


def start_api(redis_url: str, storage: str, port: int, workers: int = 1,
              rate: float = 0) -> subprocess.Popen:
    env = {**os.environ, "LAMINA_REDIS_URL": redis_url, "LAMINA_STORAGE": storage,
           "LAMINA_API_KEYS": f"{API_KEY}:bench", "LAMINA_QUOTAS__RATE_PER_SECOND": str(rate),
           "LAMINA_QUOTAS__RATE_BURST": "1000000",
           "LAMINA_QUOTAS__MAX_QUEUED_JOBS": "0", "LAMINA_QUOTAS__MAX_STREAMS": "5000",
           "LAMINA_QUOTAS__MAX_STREAMS_PER_TENANT": "5000",
           "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("sdk", "services"))}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "lamina_service.api:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--no-access-log"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lamina-bench-prom-")
    api = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return api
        except httpx.TransportError:
            pass
        if api.poll() is not None:
            raise RuntimeError(f"the API exited with code {api.returncode}")
        time.sleep(0.1)
    api.kill()
    raise RuntimeError("the API did not become ready within 60 s")


async def hold_streams(port: int, job_id: str, n: int) -> None:
    """Open ``n`` event streams of ``job_id``, print ``open <n>``, hold them until stdin ends."""
    request = (f"GET /v1/jobs/{job_id}/events HTTP/1.1\r\nHost: b\r\n"
               f"Authorization: Bearer {API_KEY}\r\n\r\n").encode()
    held, refused = [], 0
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 200"):
            held.append(writer)
        else:
            refused += 1
            writer.close()
    print(f"open {len(held)} refused {refused}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for writer in held:
        writer.close()


def upload_dataset(url: str) -> str:
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x=rng.random((256, 8), dtype=np.float32),
             y=rng.random((256, 1), dtype=np.float32))
    reply = httpx.post(f"{url}/v1/datasets", content=buf.getvalue(), headers=HEADERS)
    reply.raise_for_status()
    return reply.json()["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wrk", action="store_true", help="drive the load with wrk")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--streams", type=int, default=0)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0,
                        help="per-tenant rate limit (0: off; a huge value measures its cost)")
    parser.add_argument("--appendfsync", choices=("off", "no", "everysec", "always"),
                        default="off", help="Redis AOF policy (off: no AOF)")
    parser.add_argument("--load", nargs=2, metavar=("URL", "DATASET_ID"), help=argparse.SUPPRESS)
    parser.add_argument("--hold", nargs=3, metavar=("PORT", "JOB_ID", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load-generator process
        print(json.dumps(asyncio.run(load(*args.load, args.concurrency, args.requests))))
        return
    if args.hold:  # the process holding event streams open
        asyncio.run(hold_streams(int(args.hold[0]), args.hold[1], int(args.hold[2])))
        return

    from lamina_service.redis_server import RedisServer, free_port

    redis = RedisServer(appendonly=args.appendfsync != "off",
                        appendfsync="always" if args.appendfsync == "off" else args.appendfsync,
                        ).start()
    api = None
    try:
        with tempfile.TemporaryDirectory(prefix="lamina-bench-") as storage:
            port = free_port()
            api = start_api(redis.url, storage, port, args.api_workers, args.rate)
            url = f"http://127.0.0.1:{port}"
            dataset_id = upload_dataset(url)
            if args.wrk:
                from service_wrk import run_wrk_phases  # next to this file

                run_wrk_phases(url, port, dataset_id, job_body(dataset_id, 0), args)
                return
            print(f"service latency: {args.requests} requests per phase, concurrency "
                  f"{args.concurrency}, 1 uvicorn worker, Redis {redis.url}, {os.cpu_count()} "
                  "CPUs shared by server and load process")
            print(f"{'round':>5} {'load1':>5} {'phase':<8} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'req/s':>8} {'errors':>6}")
            for round_ in range(1, args.rounds + 1):
                load1 = os.getloadavg()[0]
                out = subprocess.run(
                    [sys.executable, __file__, "--load", url, dataset_id, "--concurrency",
                     str(args.concurrency), "--requests", str(args.requests)],
                    capture_output=True, text=True, check=True, timeout=1800,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                for phase in ("submit", "read"):
                    r = result[phase]
                    print(f"{round_:>5} {load1:>5.2f} {phase:<8} {r['p50'] * 1e3:>8.2f} "
                          f"{r['p99'] * 1e3:>8.2f} {r['throughput']:>8.1f} {r['errors']:>6}")
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(timeout=10)
            except subprocess.TimeoutExpired:
                api.kill()
        redis.cleanup()


if __name__ == "__main__":
    main()

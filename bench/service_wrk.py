"""wrk phases of ``bench/service_latency.py --wrk`` (see its docstring)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

API_KEY = "bench-key"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * _UNITS[unit]


def wrk(url: str, connections: int, duration: int, script: str | None = None) -> dict:
    """Run wrk with ``--latency``; returns req/s, p50/p99 (ms), errors (non-2xx + socket)."""
    cmd = ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{duration}s",
           "--latency", "-H", f"Authorization: Bearer {API_KEY}"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if "99" not in latency:
        raise RuntimeError(f"could not read wrk's latency distribution:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.M)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": _ms(latency["50"]), "p99": _ms(latency["99"]),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)), "errors": errors}


def _post_script(body: dict, folder: str) -> str:
    path = Path(folder) / "post.lua"
    path.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    f"wrk.body = {json.dumps(json.dumps(body))}\n")
    return str(path)


def run_wrk_phases(url: str, port: int, dataset_id: str, body: dict, args) -> None:
    """Reads, submissions, then reads again with ``args.streams`` event streams open."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    job_id = httpx.post(f"{url}/v1/jobs", json=body, headers=headers).json()["id"]
    c, d = args.connections, args.duration
    print(f"wrk: {c} connections, {d} s per phase, {args.api_workers} API process(es), "
          f"Redis AOF {args.appendfsync}, rate limit {args.rate or 'off'}, {os.cpu_count()} "
          "CPUs shared with wrk and Redis")
    print(f"{'phase':<34} {'load1':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")

    def show(name: str, result: dict) -> None:
        print(f"{name:<34} {os.getloadavg()[0]:>5.2f} {result['rps']:>8.1f} "
              f"{result['p50']:>8.2f} {result['p99']:>8.2f} {result['errors']:>6}", flush=True)

    with tempfile.TemporaryDirectory(prefix="lamina-wrk-") as folder:
        for _ in range(args.rounds):
            show("GET /v1/jobs/{id}", wrk(f"{url}/v1/jobs/{job_id}", c, d))
            show("POST /v1/jobs", wrk(f"{url}/v1/jobs", c, d, _post_script(body, folder)))
        # latency without saturation: one client at a time, before and with the streams
        show("GET /v1/jobs (1 connection)", wrk(f"{url}/v1/jobs?limit=20", 1, d))
        if args.streams:
            holder = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("service_latency.py")), "--hold",
                 str(port), job_id, str(args.streams)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                print(f"event streams: {holder.stdout.readline().strip()}", flush=True)
                for _ in range(args.rounds):
                    show(f"GET /v1/jobs (1 conn., {args.streams} str.)",
                         wrk(f"{url}/v1/jobs?limit=20", 1, d))
                    show(f"GET /v1/jobs ({args.streams} streams)",
                         wrk(f"{url}/v1/jobs?limit=20", c, d))
                    show(f"GET /healthz ({args.streams} streams)", wrk(f"{url}/healthz", c, d))
            finally:
                holder.stdin.close()
                holder.wait(timeout=60)

"""Soak: 30 minutes of jobs and reads under faults; memory flat, throughput steady.

``make soak`` (``LAMINA_SOAK=1``; skipped otherwise). The stack of
:mod:`tests.chaos.test_chaos` (AOF Redis, Ray head, API, two workers) trains small
jobs back to back (``IN_FLIGHT`` queued or running at any time) while a reader lists
jobs, reads records and scrapes ``/metrics`` a few times a second, and the injector
draws a fault about every ``LAMINA_SOAK_FAULT_EVERY`` seconds: replica SIGKILLs, Redis
SIGKILL + AOF restart, a worker SIGSTOPped past its lease. (API and worker SIGKILLs
are left to the chaos test: they would cut the RSS series this test measures.)

Every ``SAMPLE_EVERY`` seconds the RSS of the API, each worker, each worker's Ray
driver child and Redis is recorded with the jobs finished and reads served so far;
the series goes to ``soak.json`` (``LAMINA_SOAK_OUT``, default the test's tmp dir)
and a summary is printed. It asserts that every job succeeded, no process grew by
more than ``max(32 MB, 25 %)`` from the end of the warm-up (the first fifth) to the
end, and each later fifth of the run finished at least half the median one's jobs.
``LAMINA_SOAK_SECONDS`` shortens the run (a smoke test of the harness).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
from pathlib import Path

import pytest

from tests.chaos.injector import Injector, Plan, Scraper, session_pids
from tests.chaos.test_chaos import LEASE_SECONDS, _busy, job_table, stack, submit

SOAK_SECONDS = float(os.environ.get("LAMINA_SOAK_SECONDS", "1800"))
FAULT_EVERY = float(os.environ.get("LAMINA_SOAK_FAULT_EVERY", "60"))
SAMPLE_EVERY = 10.0
IN_FLIGHT = 4
KINDS = ("kill_replica", "restart_redis", "stop_worker")

pytestmark = [pytest.mark.soak, pytest.mark.timeout(int(SOAK_SECONDS) + 900)]
__all__ = ["stack"]  # the fixture, shared with the chaos test


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def processes(stack, redis) -> dict[str, int]:
    """The processes whose memory is watched: API, workers, their Ray driver children."""
    out = {"redis": redis.process.pid}
    for child in stack.children:
        if child.name == "api" or child.name.startswith("worker"):
            out[child.name] = child.process.pid
        if child.name.startswith("worker"):
            for pid in session_pids(child.process.pid):
                if pid != child.process.pid:
                    out[f"{child.name}-driver"] = pid
    return out


class Reader(threading.Thread):
    """Reads as a dashboard would: job listings, single records, the API's metrics."""

    def __init__(self, client, url: str, ids: list[str]) -> None:
        super().__init__(name="soak-reader", daemon=True)
        self.client, self.url, self.ids = client, url, ids
        self.stop = threading.Event()
        self.reads = 0
        self.errors: list[str] = []
        self.rng = random.Random(7)

    def run(self) -> None:
        from urllib.request import urlopen

        while not self.stop.wait(0.2):
            try:
                self.client.jobs(limit=20)
                if self.ids:
                    self.client.job(self.rng.choice(self.ids))
                with urlopen(f"{self.url}/metrics", timeout=10) as reply:  # noqa: S310
                    reply.read()
                self.reads += 3
            except Exception as exc:  # noqa: BLE001 - a Redis restart may outlast retries
                self.errors.append(f"{type(exc).__name__}: {exc}")


def test_soak(stack, aof_redis, tmp_path):
    from lamina.client import Client

    out = Path(os.environ.get("LAMINA_SOAK_OUT") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    plan = Plan.draw(2024, kinds=KINDS, count=max(1, int(SOAK_SECONDS / FAULT_EVERY)),
                     spread=2 * FAULT_EVERY)
    samples: list[dict] = []
    finished: list[tuple[float, str, str]] = []
    with Client(stack.url) as client:
        ids: list[str] = []
        epochs: dict[str, int] = {}
        reader = Reader(Client(stack.url), stack.url, ids)
        injector = Injector(stack, aof_redis, plan, lease_seconds=LEASE_SECONDS,
                            busy=lambda: _busy(client, epochs), scraper=Scraper())
        start = time.monotonic()
        deadline = start + SOAK_SECONDS
        reader.start()
        injector.start()
        pending: set[str] = set()
        table, round_ = [], 0
        next_sample = start
        try:
            while time.monotonic() < deadline or pending:
                if time.monotonic() < deadline and len(pending) < IN_FLIGHT:
                    if not table:
                        round_ += 1
                        table = job_table(1000 + round_)
                    remote, spec, _, _ = submit(client, table.pop(0))
                    ids.append(remote.id)
                    epochs[remote.id] = spec["fit"]["epochs"]
                    pending.add(remote.id)
                    continue
                for job in client.jobs(status=None, limit=4 * IN_FLIGHT):
                    if job.id in pending and job.done:
                        pending.discard(job.id)
                        finished.append((time.monotonic() - start, job.id, job.status))
                now = time.monotonic()
                if now >= next_sample:
                    next_sample += SAMPLE_EVERY
                    rss = {name: rss_mb(pid)
                           for name, pid in processes(stack, aof_redis).items()}
                    samples.append({"t": round(now - start, 1), "rss_mb": rss,
                                    "jobs_finished": len(finished), "reads": reader.reads})
                if now > deadline + 600:
                    raise AssertionError(f"jobs still pending 10 min after the end: {pending}")
                time.sleep(0.5)
        finally:
            injector.stop()
            reader.stop.set()
            injector.join(60)
            reader.join(30)
            reader.client.close()
    report = {"seconds": SOAK_SECONDS, "faults": [vars(f) for f in injector.done],
              "samples": samples, "read_errors": reader.errors[:20],
              "finished": [{"t": round(t, 1), "id": i, "status": s} for t, i, s in finished]}
    (out / "soak.json").write_text(json.dumps(report, indent=1))

    # memory from the end of the warm-up (the first fifth) to the end of the run
    warm = [s for s in samples if s["t"] >= SOAK_SECONDS / 5] or samples
    growth = {}
    for name in samples[-1]["rss_mb"]:
        series = [s["rss_mb"].get(name) for s in warm if s["rss_mb"].get(name)]
        if len(series) >= 2:
            growth[name] = (round(series[0], 1), round(statistics.median(series[-3:]), 1))
    # throughput: jobs finished per fifth of the run
    fifths = [0] * 5
    for t, _, _ in finished:
        if t < SOAK_SECONDS:
            fifths[min(4, int(5 * t / SOAK_SECONDS))] += 1
    summary = {"jobs": len(finished), "reads": reader.reads, "faults": len(injector.done),
               "jobs_per_fifth": fifths, "rss_mb_warm_to_end": growth,
               "read_errors": len(reader.errors)}
    print(json.dumps(summary))
    (out / "soak-summary.json").write_text(json.dumps(summary, indent=1))

    failed = [f for f in finished if f[2] != "succeeded"]
    assert not failed, failed
    assert len(finished) == len(ids)
    for name, (first, last) in growth.items():
        assert last - first <= max(32.0, 0.25 * first), (name, first, last)
    steady = fifths[1:]  # the first fifth includes start-up (drivers joining Ray)
    assert min(steady) >= statistics.median(steady) / 2, fifths

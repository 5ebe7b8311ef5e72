"""The docker-compose topology without Docker: the same processes on loopback.

redis-server with AOF and the repository's ACL (default user off), ``ray start --head``
with token auth, the API with API keys, two workers joined to the Ray head and
serving metrics, and Debian's ``prometheus`` scraping them with
``deploy/prometheus/prometheus.yml`` pointed at the test's ports. A job with two
replicas is trained through the SDK, then every PromQL query of every panel of
``deploy/grafana/dashboards/lamina.json`` must return data.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import urlopen

import numpy as np
import pytest
import yaml

import lamina

# Ray takes 20-30 s to start here; a stack plus a training job needs more than 300 s
# on a slow CI machine.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-key"
#: Scrape interval here (deploy's is 10 s). The per-job gauges exist only from the job's
#: first epoch to its end: that must span several scrapes (checked in the test). Idle,
#: an epoch takes ~0.12 s on the slower machines here and ~1.6x less on the faster ones
#: (2026-12-05): 120 give 9-14 s, room for a machine twice as fast again.
SCRAPE_INTERVAL_MS = 1000
GAUGE_SCRAPES = 3
EPOCHS = 120
#: ``$__rate_interval`` in the panels' queries: Grafana takes at least 4 scrape intervals.
RATE_WINDOW_MS = 10_000


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` for every target of every panel (rows included)."""
    out = []
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def duration_ms(text: str) -> int:
    """A one-unit Prometheus duration (``250ms``, ``10s``, ``1m``) in milliseconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    assert match, f"not a one-unit Prometheus duration: {text!r}"
    return int(match[1]) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[match[2]]


def prometheus_config(api_port: int, worker_ports: list[int]) -> dict:
    """The repository's prometheus.yml with the compose targets replaced by the test's,
    scraping every :data:`SCRAPE_INTERVAL_MS` with the timeout scaled alike."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    scrape = config["global"]
    # deploy's timeout relative to its interval (the whole interval: a slow /metrics of a
    # busy worker or API still lands), applied to this interval
    timeout = (SCRAPE_INTERVAL_MS * duration_ms(scrape["scrape_timeout"])
               // duration_ms(scrape["scrape_interval"]))
    scrape["scrape_interval"] = f"{SCRAPE_INTERVAL_MS}ms"
    scrape["scrape_timeout"] = f"{timeout}ms"
    targets = {"lamina-api": [f"127.0.0.1:{api_port}"],
               "lamina-worker": [f"127.0.0.1:{p}" for p in worker_ports]}
    kept = []
    for scrape in config["scrape_configs"]:
        if scrape["job_name"] not in targets:
            continue  # Ray's own metrics: not part of the Lamina dashboard
        scrape.pop("dns_sd_configs", None)
        scrape["static_configs"] = [{"targets": targets[scrape["job_name"]]}]
        kept.append(scrape)
    config["scrape_configs"] = kept
    return config


def start_redis(tmp: Path, password: str) -> tuple[subprocess.Popen, str]:
    """redis-server as compose runs it: AOF on, the ACL file with the default user off."""
    from lamina_service.redis_server import find_redis_server, free_port

    template = (ROOT / "deploy/redis/users.acl.template").read_text()
    acl = tmp / "users.acl"
    acl.write_text(template.replace("${REDIS_PASSWORD}", password))
    port = free_port()
    process = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
         "--aclfile", str(acl)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://lamina:{password}@127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    with pytest.raises(redis.AuthenticationError):  # the default user is off
        redis.Redis(port=port).ping()
    return process, url


def wait_for_targets(prom: str, count: int, timeout: float = 60) -> None:
    """Block until Prometheus has scraped all ``count`` targets successfully once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(f"{prom}/api/v1/targets", timeout=10) as reply:  # noqa: S310
                active = json.load(reply)["data"]["activeTargets"]
        except HTTPError as exc:  # 503 until its storage is open (the port opens before)
            if exc.code != 503:
                raise
            active = []
        health = [target["health"] for target in active]
        if len(health) == count and all(h == "up" for h in health):
            return
        assert time.monotonic() < deadline, f"prometheus targets not up: {active}"
        time.sleep(0.25)


def query_range(prom: str, expr: str, start: float, end: float) -> list:
    params = urlencode({"query": expr, "start": start, "end": end, "step": "200ms"})
    with urlopen(f"{prom}/api/v1/query_range?{params}", timeout=10) as reply:  # noqa: S310
        body = json.load(reply)
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="Debian's prometheus package is not installed (.ci/run installs it)")
def test_compose_topology_trains_and_fills_every_dashboard_panel(tmp_path):
    from lamina_service.embedded import EmbeddedStack, wait_for_port
    from lamina_service.redis_server import free_port

    redis_process, redis_url = start_redis(tmp_path, secrets.token_hex(12))
    stack = EmbeddedStack(workers=2, root=str(tmp_path / "stack"), redis_url=redis_url,
                          ray_cpus=4, metrics_ports=True, api_keys=f"{API_KEY}:e2e")
    prometheus = None
    try:
        started = time.time()
        stack.start(timeout=240)
        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump(
            prometheus_config(stack.port, stack.worker_metrics_ports)))
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(prom_port, 30)
        prom = f"http://127.0.0.1:{prom_port}"
        # The first scrape comes seconds after start-up: train only once every
        # target has been scraped, or a short job ends before Prometheus looks.
        wait_for_targets(prom, 1 + len(stack.worker_metrics_ports))

        rng = np.random.default_rng(0)
        x = rng.normal(size=(2048, 8)).astype("float32")
        y = (x[:, :1] - 2 * x[:, 1:2] > 0).astype("float32")
        model = lamina.Sequential([lamina.Input(shape=(8,)),
                                   lamina.layers.Dense(16, activation="relu"),
                                   lamina.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        with lamina.Client(stack.url, api_key=API_KEY) as client:
            job = client.fit(model, x, y, batch_size=16, epochs=EPOCHS, validation_split=0.25,
                             replicas=2, seed=0, name="e2e")
            history = job.wait(verbose=0)
            assert job.status == "succeeded", job.error
            # The per-job gauges live from the first epoch's end to the job's end (event
            # ids are Redis stream ids: milliseconds first): room for several scrapes, so
            # that a panel without them below is a bug, not a scrape that fell elsewhere.
            stamps = [(event.type, int(event.id.split("-")[0])) for event in job.events()]
            lived = stamps[-1][1] - next(ms for kind, ms in stamps if kind == "epoch")
            assert lived >= GAUGE_SCRAPES * SCRAPE_INTERVAL_MS, (
                f"the per-job gauges lived {lived} ms, under {GAUGE_SCRAPES} scrapes of "
                f"{SCRAPE_INTERVAL_MS} ms: train longer")
            assert len(history.history["val_loss"]) == EPOCHS
            assert job.model().evaluate(x, y, verbose=0)[1] > 0.7
        dashboard = json.loads((ROOT / "deploy/grafana/dashboards/lamina.json").read_text())
        queries = panel_queries(dashboard)
        assert RATE_WINDOW_MS >= 4 * SCRAPE_INTERVAL_MS
        assert len(queries) >= 11
        deadline = time.monotonic() + 30  # the counters' last scrapes may still be due
        while True:
            empty = []
            for title, expr in queries:
                promql = (expr.replace("$__rate_interval", f"{RATE_WINDOW_MS}ms")
                          .replace("$job", ".*"))
                series = query_range(prom, promql, started, time.time())
                values = [float(v) for s in series for _, v in s["values"]]
                if not any(np.isfinite(values)):
                    empty.append(f"{title}: {promql}")
            if not empty or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert not empty, "panels without data:\n" + "\n".join(empty)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=10)
        stack.stop()
        redis_process.terminate()
        redis_process.wait(timeout=10)

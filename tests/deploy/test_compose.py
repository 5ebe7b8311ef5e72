"""docker-compose.yml and deploy/: the file is valid, only api and grafana publish ports,
Redis and Ray are locked down, and the Prometheus/Grafana files agree with the metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_only_api_and_grafana_publish_ports(compose):
    published = {name for name, service in compose["services"].items()
                 if service.get("ports")}
    assert published == {"api", "grafana"}
    for name, service in compose["services"].items():
        assert "network_mode" not in service, name  # host networking would publish all
        if name not in ("api", "grafana"):
            assert compose["networks"][service["networks"][0]].get("internal") is True, name
            assert service["networks"] == ["backend"], name


def test_services_have_healthchecks_and_wait_for_healthy_dependencies(compose):
    services = compose["services"]
    assert set(services) == {"redis", "api", "ray-head", "worker", "prometheus", "grafana"}
    for name, service in services.items():
        assert "healthcheck" in service, name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(services["worker"]["depends_on"]) == {"redis", "ray-head"}
    assert "container_name" not in services["worker"]  # --scale worker=N needs no fixed name


def test_redis_has_aof_a_password_and_no_default_user(compose):
    conf = (ROOT / "deploy/redis/redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M)
    acl = (ROOT / "deploy/redis/users.acl.template").read_text()
    assert "user default off" in acl and ">${REDIS_PASSWORD}" in acl and "-@dangerous" in acl
    redis_env = compose["services"]["redis"]["environment"]
    assert redis_env["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert "${REDIS_PASSWORD:?" in compose["x-lamina-env"]["LAMINA_REDIS_URL"]


def test_ray_token_auth_is_on_for_every_ray_process(compose):
    for name in ("ray-head", "worker"):
        env = compose["services"][name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        assert env["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?"), name
    head = " ".join(compose["services"]["ray-head"]["command"])
    assert "--include-dashboard=false" in head


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="docker-compose is not installed (.ci/run installs Debian's)")
def test_docker_compose_config_accepts_the_file():
    result = subprocess.run(
        ["docker-compose", "--env-file", "deploy/.env.example", "config", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rendered = subprocess.run(
        ["docker-compose", "--env-file", "deploy/.env.example", "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout
    services = yaml.safe_load(rendered)["services"]
    assert {n for n, s in services.items() if s.get("ports")} == {"api", "grafana"}


def test_env_example_defines_every_required_variable():
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = (ROOT / "deploy/.env.example").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert required and required <= defined


def test_prometheus_scrapes_the_api_and_every_worker():
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {s["job_name"]: s for s in config["scrape_configs"]}
    assert jobs["lamina-api"]["static_configs"][0]["targets"] == ["api:8000"]
    worker = jobs["lamina-worker"]
    assert worker["dns_sd_configs"][0]["names"] == ["worker"]
    assert worker["honor_labels"] is True  # keeps lamina_train_loss's own "job" label
    if shutil.which("promtool"):
        subprocess.run(["promtool", "check", "config",
                        str(ROOT / "deploy/prometheus/prometheus.yml")],
                       check=True, capture_output=True)


def test_grafana_provisioning_points_at_the_dashboards():
    source = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/lamina.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/lamina.json").read_text())
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["description"] and panel["targets"], panel["title"]


def test_dashboard_uses_only_defined_metrics():
    """Every lamina_* name in a panel query is defined by the API or the worker."""
    defined = set()
    for module in ("services/lamina_service/metrics.py", "worker/lamina_worker/metrics.py"):
        defined |= set(re.findall(r'"(lamina_[a-z_]+)"', (ROOT / module).read_text()))
    dashboard = (ROOT / "deploy/grafana/dashboards/lamina.json").read_text()
    used = set(re.findall(r"lamina_[a-z_]+", dashboard)) - {"lamina_prometheus"}
    suffixes = ("_bucket", "_sum", "_count")
    base = {next((u[: -len(s)] for s in suffixes if u.endswith(s)), u) for u in used}
    assert base <= defined, base - defined
    for name in ("lamina_queue_depth", "lamina_jobs", "lamina_http_requests_total",
                 "lamina_train_samples_total", "lamina_train_step_seconds",
                 "lamina_allreduce_seconds", "lamina_checkpoint_seconds", "lamina_train_loss",
                 "lamina_val_loss", "lamina_worker_busy", "lamina_job_retries_total"):
        assert name in base, name

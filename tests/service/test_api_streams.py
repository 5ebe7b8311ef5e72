"""Event streams over real HTTP: many idle streams do not stall the API, caps answer 429,
disconnects release their slot and Redis connection, quiet streams carry keep-alives."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.service.conftest import AUTH_A, AUTH_B, LiveServer, job_body, npz_bytes


def open_stream(port: int, job_id: str, key: str = "key-a") -> socket.socket:
    """A raw HTTP/1.1 SSE request; returns the socket once the 200 headers arrived."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /v1/jobs/{job_id}/events HTTP/1.1\r\nHost: t\r\n"
                 f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "connection closed before the headers"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def stream_server(settings):
    from lamina_service.api import create_app
    from lamina_service.config import Quotas

    quotas = Quotas(max_streams=230, max_streams_per_tenant=200)
    app = create_app(settings.model_copy(update={"quotas": quotas, "sse_poll_ms": 5000}))
    with LiveServer(app) as server:
        yield app, server


def submit(http: httpx.Client, headers=AUTH_A) -> str:
    dataset = http.post("/v1/datasets", content=npz_bytes(), headers=headers).json()["id"]
    return http.post("/v1/jobs", json=job_body(dataset), headers=headers).json()["id"]


def test_200_idle_streams_do_not_slow_reads_and_caps_answer_429(stream_server, rclient):
    app, server = stream_server
    slots = app.state.stream_slots
    with httpx.Client(base_url=server.url, timeout=10) as http:
        job_a, job_b = submit(http), submit(http, AUTH_B)
        clients_before = len(rclient.client_list())
        streams = [open_stream(server.port, job_a) for _ in range(200)]
        try:
            assert slots.in_use == 200
            latencies = []
            for _ in range(20):
                for path, headers in (("/healthz", {}), ("/v1/jobs", AUTH_A)):
                    start = time.perf_counter()
                    assert http.get(path, headers=headers).status_code == 200
                    latencies.append(time.perf_counter() - start)
            # 40 threads would be gone with thread-per-stream; here reads stay fast
            assert max(latencies) < 1.0, max(latencies)

            refused = http.get(f"/v1/jobs/{job_a}/events", headers=AUTH_A)
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.json()["error"]["limit"] == "max_streams_per_tenant"
            assert "200" in refused.json()["error"]["message"]

            others = [open_stream(server.port, job_b, "key-b") for _ in range(30)]
            streams += others
            refused = http.get(f"/v1/jobs/{job_b}/events", headers=AUTH_B)
            assert refused.status_code == 429
            assert refused.json()["error"]["limit"] == "max_streams"
        finally:
            for sock in streams[:150]:
                sock.close()
        # disconnects release the slots and the Redis connections blocked in XREAD
        assert wait_until(lambda: slots.in_use == 80), slots.in_use
        assert wait_until(lambda: len(rclient.client_list()) <= clients_before + 80 + 8)
        open_stream(server.port, job_a).close()  # a freed slot serves a new stream
        for sock in streams[150:]:
            sock.close()
        assert wait_until(lambda: slots.in_use == 0), slots.in_use
        assert http.get("/healthz").status_code == 200


def test_quiet_stream_sends_keep_alives_and_ends_on_terminal_state(live_server, app):
    from lamina_service.queue import Consumer

    with httpx.Client(base_url=live_server.url, headers=AUTH_A, timeout=10) as http:
        job_id = submit(http)
        lines = []
        with http.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
            for line in stream.iter_lines():
                lines.append(line)
                if line == ": keep-alive" and lines.count(line) == 2:  # sse_poll_ms=100
                    consumer = Consumer(app.state.redis, app.state.settings, "w")
                    consumer.mark_cancelled(consumer.claim(block_ms=100))
        events = [line[7:] for line in lines if line.startswith("event: ")]
        assert events == ["state", "state", "state"]
        assert '"status": "cancelled"' in lines[-2]
        assert wait_until(lambda: app.state.stream_slots.in_use == 0)

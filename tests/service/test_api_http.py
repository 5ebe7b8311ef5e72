"""The API over real HTTP (uvicorn on a free port): live SSE, an endless chunked body,
and Redis SIGKILLed (AOF on) during 500 submissions."""

from __future__ import annotations

import select
import socket
import threading
import time

import httpx

from tests.service.conftest import AUTH_A, LiveServer, job_body, npz_bytes


def test_submit_and_follow_live_events(live_server, app):
    from lamina_service.queue import Consumer

    with httpx.Client(base_url=live_server.url, headers=AUTH_A, timeout=10) as http:
        dataset = http.post("/v1/datasets", content=npz_bytes()).json()["id"]
        job_id = http.post("/v1/jobs", json=job_body(dataset)).json()["id"]

        def work():
            consumer = Consumer(app.state.redis, app.state.settings, "live")
            job = consumer.claim(block_ms=2000)
            for epoch in range(3):
                time.sleep(0.05)
                consumer.record_epoch(job, epoch, {"loss": 1.0 - epoch / 10})
            consumer.commit(job, job.id, {"loss": 0.8})

        worker = threading.Thread(target=work)
        worker.start()
        seen = []
        with http.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    seen.append(line[7:])
        worker.join()
        assert seen == ["state", "state", "epoch", "epoch", "epoch", "state"]
        assert http.get(f"/v1/jobs/{job_id}").json()["history"]["loss"] == [1.0, 0.9, 0.8]


def read_reply(sock: socket.socket) -> bytes:
    """One HTTP reply: its headers and its Content-Length body. The server writes the
    two separately; a single ``recv`` right after the headers arrived may get only
    them."""
    reply = b""
    while True:
        head, _, body = reply.partition(b"\r\n\r\n")
        if _:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length:
                return reply
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return reply  # what arrived before the server closed on our unread chunks
        if not chunk:
            return reply
        reply += chunk


def test_endless_chunked_body_is_cut_off_with_413(live_server, settings):
    """A '2 GB' body without Content-Length: the server answers 413 at the cap."""
    cap = settings.limits.max_upload_bytes
    chunk = b"\0" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/datasets HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer key-a\r\n"
                     b"Content-Type: application/octet-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < 2 * 2**30:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered before we finished
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_reply(sock).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "payload_too_large" in reply
    assert sent < cap + 64 * 2**20  # cut off near the cap, not after 2 GB
    with httpx.Client(base_url=live_server.url) as http:
        assert http.get("/healthz").status_code == 200


def test_endless_body_in_process_is_not_buffered(app, settings):
    import anyio

    consumed = 0

    async def endless():
        nonlocal consumed
        while consumed < 2 * 2**30:
            consumed += 65536
            yield b"\0" * 65536

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post("/v1/datasets", content=endless(), headers=AUTH_A)

    reply = anyio.run(main)
    assert reply.status_code == 413 and reply.json()["error"]["field"] == "body"
    assert consumed <= settings.limits.max_upload_bytes + 2 * 65536


def test_redis_sigkill_during_500_submissions(tmp_path, settings):
    """Redis is SIGKILLed at submission 150 and started again ``outage`` submissions
    later: each one in between answers 503 "unavailable" (never a 500, never hangs),
    the API recovers by itself, and every acknowledged job survives one more SIGKILL."""
    from lamina_service.api import create_app
    from lamina_service.redis_server import RedisServer

    # Each 503 spends the client's retry policy (~0.35 s of backoff): 100 of them were
    # 37 of the test's 40 s, and each answers alike.
    outage = 25
    redis_server = RedisServer(appendonly=True, data_dir=str(tmp_path / "redis"))
    (tmp_path / "redis").mkdir()
    redis_server.start()
    try:
        app = create_app(settings.model_copy(update={"redis_url": redis_server.url}))
        accepted, statuses = [], []
        with LiveServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH_A,
                                                     timeout=30) as http:
            dataset = http.post("/v1/datasets", content=npz_bytes()).json()["id"]
            body = job_body(dataset)
            for n in range(500):
                if n == 150:
                    redis_server.kill()
                if n == 150 + outage:
                    redis_server.start()
                reply = http.post("/v1/jobs", json=body)
                statuses.append(reply.status_code)
                if reply.status_code == 202:
                    accepted.append(reply.json()["id"])
                else:
                    assert reply.json()["error"]["code"] == "unavailable"
            assert set(statuses) <= {202, 503}, sorted(set(statuses))
            assert statuses[150:150 + outage] == [503] * outage, statuses[150:150 + outage]
            assert len(accepted) >= 500 - outage - 10
            redis_server.kill()  # once more, then check everything acknowledged survived
            redis_server.start()
            for job_id in accepted:
                assert http.get(f"/v1/jobs/{job_id}").status_code == 200, job_id
            listed = http.get("/v1/jobs?limit=200&status=queued").json()
            assert listed["next_offset"] == 200
            assert http.get("/readyz").status_code == 200
    finally:
        redis_server.cleanup()

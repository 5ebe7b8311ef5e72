"""``GET /v1/events`` over real HTTP (uvicorn + redis-server): a tenant's job changes
as SSE, never another tenant's, resumable with Last-Event-ID, its slot released."""

from __future__ import annotations

import json
import time

import httpx

from tests.service.conftest import AUTH_A, AUTH_B, job_body, npz_bytes


class Frames:
    """Reads SSE frames from an open ``/v1/events`` response."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()
        self.comments: list[str] = []

    def next(self) -> dict | None:
        """The next event as {id, event, data}; None after a comment-only block."""
        frame: dict = {}
        for line in self.lines:
            if not line:
                if frame:
                    return frame
                continue
            if line.startswith(":"):
                self.comments.append(line)
                return None
            name, _, value = line.partition(": ")
            frame[name] = json.loads(value) if name == "data" else value
        raise AssertionError("the stream ended")

    def until(self, predicate, timeout: float = 10.0) -> list[dict]:
        """Events read until one satisfies ``predicate`` (that one included)."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.next()
            if frame is None:
                continue
            seen.append(frame)
            if predicate(frame):
                return seen
        raise AssertionError(f"no matching event within {timeout} s; saw {seen}")


def submit(http: httpx.Client, headers) -> str:
    dataset = http.post("/v1/datasets", content=npz_bytes(), headers=headers).json()["id"]
    reply = http.post("/v1/jobs", json=job_body(dataset), headers=headers)
    assert reply.status_code in (200, 201, 202), reply.text
    return reply.json()["id"]


def test_events_need_a_key(live_server):
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        reply = http.get("/v1/events")
        assert reply.status_code == 401
        assert reply.json()["error"]["message"]
        assert http.get("/v1/events", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_tenant_stream_shows_own_jobs_only_and_resumes(app, live_server):
    from lamina_service.queue import Consumer

    slots = app.state.stream_slots
    consumer = Consumer(app.state.redis, app.state.settings, "worker-e")
    with httpx.Client(base_url=live_server.url, timeout=10) as http, \
            http.stream("GET", "/v1/events", headers=AUTH_A) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = Frames(response)
        assert frames.next() is None and frames.comments == [": connected"]
        assert slots.open["alice"] == 1
        job_b = submit(http, AUTH_B)
        job_a = submit(http, AUTH_A)
        claimed = []
        while len(claimed) < 2:  # both tenants' jobs run (fair claim order)
            job = consumer.claim(block_ms=1000)
            assert job is not None
            claimed.append(job)
        for job in claimed:
            consumer.record_epoch(job, 0, {"loss": 1.0})
            consumer.commit(job, job.id, {"loss": 1.0})
        seen = frames.until(lambda f: f["data"] == {"job_id": job_a, "status": "succeeded"})
    assert [(f["event"], f["data"]) for f in seen] == [
        ("state", {"job_id": job_a, "status": "queued"}),
        ("state", {"job_id": job_a, "status": "running"}),
        ("epoch", {"job_id": job_a, "epoch": 0}),
        ("state", {"job_id": job_a, "status": "succeeded"})]
    assert all(f["data"]["job_id"] != job_b for f in seen)
    deadline = time.monotonic() + 5  # the slot is given back when the client leaves
    while slots.in_use and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slots.in_use == 0

    # resume: after the first event, exactly the rest arrives, in order
    with httpx.Client(base_url=live_server.url, timeout=10) as http, \
            http.stream("GET", "/v1/events",
                        headers={**AUTH_A, "Last-Event-ID": seen[0]["id"]}) as response:
        frames = Frames(response)
        again = frames.until(lambda f: f["id"] == seen[-1]["id"])
    assert again == seen[1:]

    # another tenant's stream never carries alice's jobs
    from_start = {**AUTH_B, "Last-Event-ID": "0-0"}
    with httpx.Client(base_url=live_server.url, timeout=10) as http, \
            http.stream("GET", "/v1/events", headers=from_start) as response:
        frames = Frames(response)
        bobs = frames.until(lambda f: f["data"] == {"job_id": job_b, "status": "succeeded"})
    assert {f["data"]["job_id"] for f in bobs} == {job_b}


def test_a_change_right_after_the_stream_opened_is_delivered(app, live_server, monkeypatch):
    """The stream is open once its 200 headers are in: a change made right then is on
    it, even when the server reads where "now" is slowly (a loaded machine)."""
    import asyncio

    from lamina_service.queue.follow import Follower

    newest = Follower.tenant_events_head

    async def slow_head(self, tenant):
        await asyncio.sleep(0.3)
        return await newest(self, tenant)

    monkeypatch.setattr(Follower, "tenant_events_head", slow_head)
    with httpx.Client(base_url=live_server.url, timeout=10) as http, \
            http.stream("GET", "/v1/events", headers=AUTH_A) as response:
        assert response.status_code == 200
        job_id = submit(http, AUTH_A)  # the change, as soon as the headers arrived
        seen = Frames(response).until(lambda f: f["data"] == {"job_id": job_id,
                                                              "status": "queued"},
                                      timeout=5)
    assert [f["data"]["job_id"] for f in seen] == [job_id]

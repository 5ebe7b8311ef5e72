"""The job view shows each epoch's measured throughput and all-reduce share (from the
epoch events) in headless Chromium; the job's history keeps only the model's logs."""

from __future__ import annotations

import httpx
import pytest

from tests.service.conftest import AUTH_A, job_body, npz_bytes
from tests.web.browser import (
    console_errors,
    needs_chromium,
    open_with_key,
    wait_for,
)

pytestmark = [needs_chromium, pytest.mark.slow]
TABLE = """const t = document.getElementById('epochs');
return [[...t.tHead.rows[0].cells].map(c => c.textContent),
        ...[...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))]"""


def test_job_view_shows_measured_throughput_and_allreduce_share(browser, app, live_server):
    from lamina_service.queue import Consumer

    with httpx.Client(base_url=live_server.url, headers=AUTH_A, timeout=10) as http:
        data = http.post("/v1/datasets", content=npz_bytes()).json()["id"]
        job_id = http.post("/v1/jobs", json=job_body(
            data, name="perf", fit={"epochs": 3, "batch_size": 4})).json()["id"]
        consumer = Consumer(app.state.redis, app.state.settings, "worker-perf")
        job = consumer.claim(block_ms=1000)
        assert consumer.record_epoch(job, 0, {"loss": 1.0},
                                     {"samples_per_second": 1234.0, "allreduce_share": 0.125})
        open_with_key(browser, live_server.url, "key-a", f"#/job/{job_id}")
        wait_for(browser, lambda b: "samples/s" in b.execute_script(TABLE)[0],
                 "the samples/s column")
        assert browser.execute_script(TABLE) == [
            ["epoch", "loss", "samples/s", "all-reduce share"], ["1", "1", "1234", "12.5 %"]]
        # live: the next epoch's figures arrive with its event
        assert consumer.record_epoch(job, 1, {"loss": 0.5},
                                     {"samples_per_second": 2000.0, "allreduce_share": 0.25})
        wait_for(browser, lambda b: len(b.execute_script(TABLE)) == 3, "epoch 2's row")
        assert browser.execute_script(TABLE)[1] == ["2", "0.5", "2000", "25 %"]
        progress = browser.find_element("id", "job-progress").text
        assert progress.endswith("done · 2000 samples/s · all-reduce 25 %"), progress
        history = http.get(f"/v1/jobs/{job_id}").json()["history"]
        assert history == {"loss": [1.0, 0.5]}
    assert console_errors(browser) == []

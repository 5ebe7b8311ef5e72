"""Job view details in Chromium: retries on the timeline, markers, hover values, batch
progress, and the API key prompt (sessionStorage, never in the URL)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.service.conftest import AUTH_A, job_body, npz_bytes
from tests.web.browser import (
    LIVE_SECONDS,
    console_errors,
    live_lag,
    needs_chromium,
    open_with_key,
    wait_for,
    watch_text,
)

pytestmark = [needs_chromium, pytest.mark.slow]


@pytest.fixture
def retried(app, live_server):
    """A job whose first attempt failed (retry), now running attempt 2 on another worker,
    with EarlyStopping on val_loss and a learning rate cut after epoch 2."""
    from lamina_service.queue import Consumer

    body = job_body("", name="retried", fit={"epochs": 8, "batch_size": 4},
                    callbacks=[{"class_name": "EarlyStopping",
                                "config": {"monitor": "val_loss", "patience": 2}},
                               {"class_name": "ReduceLROnPlateau",
                                "config": {"monitor": "val_loss", "patience": 1}}])
    with httpx.Client(base_url=live_server.url, headers=AUTH_A, timeout=10) as http:
        body["dataset_id"] = http.post("/v1/datasets", content=npz_bytes()).json()["id"]
        job_id = http.post("/v1/jobs", json=body).json()["id"]
    first = Consumer(app.state.redis, app.state.settings, "worker-a")
    attempt = first.claim(block_ms=1000)
    first.fail(attempt, "replica lost", retry=True)
    second = Consumer(app.state.redis, app.state.settings, "worker-b")
    attempt = second.claim(block_ms=1000)
    assert attempt.id == job_id and attempt.attempt == 2
    val = [1.0, 0.6, 0.7, 0.65]
    for epoch, v in enumerate(val):
        second.record_epoch(attempt, epoch, {"loss": 1.2 - 0.2 * epoch, "val_loss": v,
                                             "learning_rate": 0.001 if epoch < 2 else 0.0001})
    return {"id": job_id, "consumer": second, "attempt": attempt}


def test_timeline_markers_hover_and_batches(browser, live_server, retried):
    job_id, consumer, attempt = retried["id"], retried["consumer"], retried["attempt"]
    open_with_key(browser, live_server.url, "key-a", f"#/job/{job_id}")
    wait_for(browser, lambda b: len(b.find_elements("css selector", "#timeline li")) >= 4,
             "the timeline")
    items = browser.execute_script(
        "return [...document.querySelectorAll('#timeline li .what')].map(e => e.textContent)")
    statuses = items
    assert statuses[0] == "queued"
    assert statuses[1] == "running attempt 1 on worker worker-a"
    assert statuses[2].startswith("queued") and "replica lost" in statuses[2]
    assert statuses[3] == "running attempt 2 on worker worker-b"
    wait_for(browser, lambda b: b.execute_script(
        "const c = Lamina.jobView.state.charts.loss; return c && c.data[0].length") == 4,
        "four epochs")
    markers = browser.execute_script("return Lamina.jobView.markers()"
                                     ".map(m => [m.x, m.label])")
    assert markers == [[2, "best val_loss"], [3, "lr 1e-4"]]
    assert "learning_rate" in browser.execute_script(
        "return Object.keys(Lamina.jobView.state.charts)")

    # hover the loss chart at epoch 3: the legend shows that epoch's train and val values
    from selenium.webdriver.common.action_chains import ActionChains

    over = browser.find_element("css selector", "#charts figure .u-over")
    x = browser.execute_script(
        "const c = Lamina.jobView.state.charts.loss; return c.valToPos(3, 'x')")
    width = over.size["width"]
    ActionChains(browser).move_to_element_with_offset(over, int(x - width / 2), 0).perform()
    values = wait_for(browser, lambda b: b.execute_script(
        "const vs = [...document.querySelectorAll('#charts figure:first-of-type .u-value')]"
        ".map(e => e.textContent); return vs[1] ? vs : null"), "legend values on hover")
    assert values == ["3", "0.8", "0.7"]

    # a batch event shows in the progress line within a second
    watch_text(browser, "job-progress")
    started = time.monotonic()
    consumer.publish_event(attempt, "batch", {"epoch": 4, "batch": 3, "steps": 4,
                                              "logs": {"loss": 0.5}})
    wait_for(browser, lambda b: b.find_element("id", "job-progress").text
             .startswith("epoch 5: batch 3 of 4"), "batch progress")
    lag = live_lag(browser, "epoch 5: batch 3 of 4")
    print(f"\nlive batch: shown {lag:.3f}s after its write (WebDriver saw it after "
          f"{time.monotonic() - started:.3f}s)")
    assert lag < LIVE_SECONDS, lag
    assert console_errors(browser) == []


def test_api_key_prompt_keeps_the_key_out_of_urls(browser, live_server, retried):
    open_with_key(browser, live_server.url, None, "#/jobs")
    wait_for(browser, lambda b: "needs a key" in b.find_element("id", "msg").text,
             "the request for a key")
    assert browser.switch_to.active_element.get_attribute("id") == "key"
    console_errors(browser)  # drop the 401s of the unauthenticated load
    box = browser.find_element("id", "key")
    box.send_keys("key-a")
    browser.find_element("id", "key-save").click()
    wait_for(browser, lambda b: len(b.find_elements("css selector", "#jobs tbody tr")) == 1,
             "the job after entering the key")
    assert browser.find_element("id", "msg").text == ""
    assert browser.execute_script("return sessionStorage.getItem('lamina_key')") == "key-a"
    assert browser.execute_script("return localStorage.length") == 0
    assert "key-a" not in browser.current_url
    browser.find_element("css selector", "#jobs tbody a").click()
    wait_for(browser, lambda b: b.execute_script(
        "return !!Lamina.jobView.state.summary"), "the job view")
    assert "key-a" not in browser.current_url
    assert console_errors(browser) == []


def test_timeline_falls_back_to_the_record_without_events(browser, app, live_server, retried):
    """With the job's event stream gone (trimmed or expired), the page still shows the
    record's times and the history from the job's record."""
    from lamina_service.queue import keys

    consumer, attempt = retried["consumer"], retried["attempt"]
    consumer.commit(attempt, attempt.id, {"loss": 0.6})
    app.state.redis.delete(keys.job_events_key(attempt.id))
    open_with_key(browser, live_server.url, "key-a", f"#/job/{attempt.id}")
    wait_for(browser, lambda b: b.execute_script(
        "return [...document.querySelectorAll('#timeline li .what')].map(e => e.textContent)")
        == ["submitted", "started", "succeeded"], "the record's times")
    assert browser.execute_script(
        "return Lamina.jobView.state.charts.loss.data[0].length") == 4
    assert console_errors(browser) == []

"""The web page at ``/`` in a real headless Chromium, served by uvicorn, while a job streams.

Chromium and chromedriver come from Debian (``apt-get install chromium chromium-driver``,
done by ``.ci/run``). Without them the test is skipped locally, but never in CI.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import httpx
import pytest

from tests.service.conftest import AUTH_A, job_body, npz_bytes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1024,900"]

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
    reason="chromium + chromedriver not installed (apt-get install chromium chromium-driver)",
)

# Pixels of the chart canvas that are not fully transparent (the axes, curves, labels).
PAINTED = """
const cv = document.getElementById('chart');
const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
return n;"""


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):  # only reachable with CI set
        pytest.fail("CI is set but chromium/chromedriver are missing: .ci/run installs them "
                    "with apt-get (chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(browser, condition, what, timeout=60):
    from selenium.webdriver.support.wait import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(
        lambda driver: condition(driver), message=f"page never showed {what}")


def row_status(browser, job_id):
    cells = browser.execute_script(
        "const tr = document.querySelector(`#jobs tbody tr[data-id='${arguments[0]}']`);"
        "return tr ? [...tr.cells].map(c => c.textContent) : null;", job_id)
    return cells and cells[2]


def test_jobs_table_and_live_chart(live_server, app, browser):
    from lamina_service.queue import Consumer

    with httpx.Client(base_url=live_server.url, headers=AUTH_A, timeout=10) as http:
        dataset = http.post("/v1/datasets", content=npz_bytes()).json()["id"]
        older = http.post("/v1/jobs", json=job_body(dataset, name="older")).json()["id"]
        job_id = http.post("/v1/jobs", json=job_body(dataset, name="live")).json()["id"]
    consumer = Consumer(app.state.redis, app.state.settings, "browser-test")
    job = consumer.claim(block_ms=1000)
    assert job.id == older  # FIFO; the page follows the newest job, still queued
    consumer.fail(job, "stopped by the test", retry=False)

    browser.get(live_server.url + "/")
    browser.execute_script("localStorage.setItem('lamina_key', 'key-a')")
    browser.get(live_server.url + "/")
    wait_for(browser, lambda b: row_status(b, job_id) == "queued", "the queued job")
    browser.get_log("browser")  # drop the 401s of the first load, made without a key
    assert row_status(browser, older) == "failed"
    assert browser.find_element("id", "title").text == f"Job {job_id}"
    assert browser.execute_script(PAINTED) == 0  # nothing to draw yet

    progress = threading.Event()

    def work():
        running = consumer.claim(block_ms=1000)
        for epoch in range(4):
            for batch in range(3):
                consumer.publish_event(running, "batch", {"epoch": epoch, "batch": batch,
                                                          "loss": 1.0 / (epoch + 1)})
            consumer.record_epoch(running, epoch, {"loss": 1.0 / (epoch + 1),
                                                   "val_loss": 1.2 / (epoch + 1)})
            if epoch == 1:
                progress.wait(30)  # hold the job running until the page showed it
            time.sleep(0.1)
        consumer.commit(running, running.id, {"loss": 0.25})

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        wait_for(browser, lambda b: b.execute_script(
            "return document.getElementById('chart').dataset.points") == "2",
            "two epochs on the chart")
        assert browser.execute_script(PAINTED) > 200
        wait_for(browser, lambda b: row_status(b, job_id) == "running", "the job running")
    finally:
        progress.set()
    worker.join(30)
    wait_for(browser, lambda b: row_status(b, job_id) == "succeeded", "the job succeeded")
    points = browser.execute_script("return document.getElementById('chart').dataset.points")
    assert points == "4"
    legend = browser.find_element("id", "legend").text
    assert "loss" in legend and "val_loss" in legend
    assert browser.execute_script(PAINTED) > 200
    assert browser.find_element("id", "msg").text == ""
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []

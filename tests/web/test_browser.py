"""The dashboard in headless Chromium against a real API (uvicorn + redis-server).

Jobs are driven by a real queue consumer (the worker's side of the queue), so the page
sees the same event stream a worker produces: state, batch and epoch events.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import AUTH_A, job_body, npz_bytes
from tests.web.browser import (
    LIVE_SECONDS,
    console_errors,
    live_lag,
    needs_chromium,
    open_with_key,
    painted_fraction,
    wait_for,
    watch_text,
)

pytestmark = [needs_chromium, pytest.mark.slow]

SERIES = """const c = Lamina.jobView.state.charts[arguments[0]];
if (!c) return null;
return c.data.slice(1).map(ys => ys.filter(v => v !== null).length);"""


@pytest.fixture
def screens(tmp_path):
    path = Path(os.environ.get("LAMINA_SCREENSHOT_DIR") or tmp_path / "screens")
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(browser, screens, name):
    path = screens / f"{name}.png"
    browser.save_screenshot(str(path))
    from PIL import Image

    assert Image.open(path).size == (1400, 900)
    assert painted_fraction(path) > 0.01, f"{name} screenshot is blank"
    return path


def epoch_logs(epoch, scale=1.0):
    return {"loss": scale * 2.0 / (epoch + 1), "mae": scale / (epoch + 1),
            "val_loss": scale * (2.4 / (epoch + 1) + 0.05 * epoch),
            "val_mae": scale * 1.1 / (epoch + 1)}


@pytest.fixture
def jobs(app, live_server):
    """A succeeded job with a model (4 epochs), a running one (2 epochs), a queued one."""
    from lamina_service.queue import Consumer

    with httpx.Client(base_url=live_server.url, headers=AUTH_A, timeout=10) as http:
        data = http.post("/v1/datasets", content=npz_bytes()).json()["id"]
        ids = [http.post("/v1/jobs", json=job_body(
            data, name=name, fit={"epochs": epochs, "batch_size": batch})).json()["id"]
            for name, epochs, batch in (("baseline", 4, 4), ("live", 6, 8), ("waiting", 3, 4))]
    consumer = Consumer(app.state.redis, app.state.settings, "worker-7")
    done = consumer.claim(block_ms=1000)
    for epoch in range(4):
        consumer.record_epoch(done, epoch, epoch_logs(epoch))
    model_bytes = b"PK-model-bytes-of-the-test" * 40
    app.state.storage.model_path(done.id).write_bytes(model_bytes)
    consumer.commit(done, done.id, epoch_logs(3))
    live = consumer.claim(block_ms=1000)
    for epoch in range(2):
        consumer.publish_event(live, "batch", {"epoch": epoch, "batch": 2, "steps": 2,
                                               "logs": {"loss": 1.0}})
        consumer.record_epoch(live, epoch, epoch_logs(epoch, scale=1.4))
    return {"done": done, "live": live, "queued": ids[2], "consumer": consumer,
            "model_bytes": model_bytes, "ids": ids}


def test_jobs_view_lists_every_job(browser, live_server, jobs, screens):
    open_with_key(browser, live_server.url, "key-a", "#/jobs")
    wait_for(browser, lambda b: len(b.find_elements("css selector", "#jobs tbody tr")) == 3,
             "three job rows")
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#jobs tbody tr')].map(tr => "
        "[tr.dataset.id, ...[...tr.cells].slice(1).map(c => c.textContent)])")
    by_id = {row[0]: row[1:] for row in rows}
    done = by_id[jobs["done"].id]
    assert done[:6] == ["succeeded", "baseline", "Sequential", "21", "1", "1"]
    assert done[6] == "4/4"
    assert done[7].startswith("val_loss ")
    assert by_id[jobs["live"].id][0] == "running" and by_id[jobs["live"].id][6] == "2/6"
    assert by_id[jobs["queued"]][0] == "queued"
    browser.find_element("id", "search").send_keys("live")
    wait_for(browser, lambda b: len(b.find_elements("css selector", "#jobs tbody tr")) == 1,
             "the search narrowing the table")
    browser.find_element("id", "search").clear()
    browser.find_element("id", "search").send_keys(" ")
    wait_for(browser, lambda b: len(b.find_elements("css selector", "#jobs tbody tr")) == 3,
             "all rows again")
    screenshot(browser, screens, "jobs")
    assert console_errors(browser) == []


def test_job_view_charts_live_updates_and_actions(browser, live_server, jobs, screens, app):
    done, live, consumer = jobs["done"], jobs["live"], jobs["consumer"]
    open_with_key(browser, live_server.url, "key-a", f"#/job/{done.id}")
    wait_for(browser, lambda b: b.execute_script(SERIES, "loss") == [4, 4], "4 epochs of loss")
    assert browser.execute_script(SERIES, "mae") == [4, 4]
    assert browser.execute_script("return Lamina.jobView.state.charts.loss.log") is True
    # the charts come with the job's record; the timeline with its event stream, after
    timeline = wait_for(browser, lambda b: (lambda text: "succeeded" in text and text)(
        b.find_element("id", "timeline").text), "the timeline replayed to the job's end")
    assert "queued" in timeline and "on worker worker-7" in timeline
    assert len(browser.find_elements("css selector", "#epochs tbody tr")) == 4
    layers = browser.find_element("id", "layers").text
    assert "hidden" in layers and "(None, 4)" in layers and "21" in layers
    screenshot(browser, screens, "job")

    # download: the bytes the worker stored land in the browser's download folder
    browser.find_element("id", "download").click()
    target = Path(browser.capabilities["chrome"]["userDataDir"]).parent / "downloads"
    saved = target / f"{done.id}.keras"
    wait_for(browser, lambda b: saved.exists() and saved.stat().st_size > 0, "the download")
    assert saved.read_bytes() == jobs["model_bytes"]

    # live: an epoch recorded now reaches the chart within a second
    browser.get(f"{live_server.url}/#/job/{live.id}")
    wait_for(browser, lambda b: b.execute_script(SERIES, "loss") == [2, 2], "2 live epochs")
    assert browser.find_element("id", "download").get_attribute("disabled") is not None
    # the event stream is open and caught up (its replay reached the running state):
    # an epoch written before it opened would be drawn after the connection, not live
    wait_for(browser, lambda b: "running" in b.find_element("id", "timeline").text,
             "the live job's event stream replayed")
    watch_text(browser, "job-progress")
    started = time.monotonic()
    consumer.record_epoch(live, 2, epoch_logs(2, scale=1.4))
    wait_for(browser, lambda b: b.execute_script(SERIES, "loss") == [3, 3], "epoch 3")
    lag = live_lag(browser, "epoch 3 of")
    print(f"\nlive epoch: drawn {lag:.3f}s after its write (WebDriver saw it after "
          f"{time.monotonic() - started:.3f}s)")
    assert lag < LIVE_SECONDS, lag

    # cancel from the page: the running job gets cancel_requested
    browser.find_element("id", "cancel").click()
    browser.switch_to.alert.accept()
    wait_for(browser, lambda b: b.find_element("id", "cancel").get_attribute("disabled")
             is not None, "cancel acknowledged")
    assert consumer.is_cancel_requested(live)
    consumer.mark_cancelled(live)
    wait_for(browser, lambda b: b.find_element("id", "job-status").text == "cancelled",
             "the cancelled state", timeout=5)
    assert console_errors(browser) == []


def test_cancel_a_queued_job(browser, live_server, jobs):
    open_with_key(browser, live_server.url, "key-a", f"#/job/{jobs['queued']}")
    wait_for(browser, lambda b: b.find_element("id", "job-status").text == "queued",
             "the queued job")
    browser.find_element("id", "cancel").click()
    browser.switch_to.alert.accept()
    wait_for(browser, lambda b: b.find_element("id", "job-status").text == "cancelled",
             "the job cancelled")
    with httpx.Client(base_url=live_server.url, headers=AUTH_A) as http:
        assert http.get(f"/v1/jobs/{jobs['queued']}").json()["status"] == "cancelled"
    assert console_errors(browser) == []


def test_compare_view_overlays_the_chosen_jobs(browser, live_server, jobs, screens):
    done, live = jobs["done"], jobs["live"]
    open_with_key(browser, live_server.url, "key-a", "#/jobs")
    for job in (done, live):
        wait_for(browser, lambda b, j=job: b.find_elements(
            "css selector", f"#jobs tr[data-id='{j.id}'] input"), "the row")
        browser.find_element("css selector", f"#jobs tr[data-id='{job.id}'] input").click()
    button = browser.find_element("id", "compare-selected")
    assert button.get_attribute("disabled") is None
    button.click()
    wait_for(browser, lambda b: b.execute_script(
        "const c = Lamina.compareView.state.chart; return c && c.series.length === 3"),
        "two series on the compare chart")
    labels, lengths = browser.execute_script(
        "const c = Lamina.compareView.state.chart;"
        "return [c.series.slice(1).map(s => s.label),"
        "        c.data.slice(1).map(ys => ys.filter(v => v !== null).length)]")
    assert labels == ["baseline", "live"] and lengths == [4, 2]
    assert browser.find_element("id", "compare-metric").get_attribute("value") == "val_loss"
    diffs = browser.execute_script(
        "return [...document.querySelectorAll('#compare-settings tr.diff th')]"
        ".map(th => th.firstChild.textContent)")
    assert {"name", "fit.epochs", "fit.batch_size", "status"} <= set(diffs)
    assert "compile.optimizer" not in diffs
    screenshot(browser, screens, "compare")
    jobs["consumer"].record_epoch(live, 2, epoch_logs(2, scale=1.4))  # the running one moves
    wait_for(browser, lambda b: b.execute_script(
        "return Lamina.compareView.state.chart.data[2].filter(v => v !== null).length") == 3,
        "the compare chart following the running job", timeout=10)
    assert console_errors(browser) == []


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
RUN_AXE = """const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "best-practice"]}})
  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.map(n => n.target.join(" "))}))))
  .catch(e => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]));"""


@pytest.mark.parametrize("view", ["jobs", "job", "compare"])
def test_axe_finds_no_serious_violations(browser, live_server, jobs, view):
    done, live = jobs["done"], jobs["live"]
    fragment = {"jobs": "#/jobs", "job": f"#/job/{done.id}",
                "compare": f"#/compare/{done.id},{live.id}"}[view]
    open_with_key(browser, live_server.url, "key-a", fragment)
    ready = {"jobs": "return document.querySelectorAll('#jobs tbody tr').length === 3",
             "job": "const c = Lamina.jobView.state.charts.loss; return !!c && "
                    "document.querySelectorAll('#timeline li').length >= 3",
             "compare": "return !!Lamina.compareView.state.chart"}[view]
    wait_for(browser, lambda b: b.execute_script(ready), f"the {view} view")
    browser.execute_script(AXE.read_text())
    browser.set_script_timeout(60)
    violations = browser.execute_async_script(RUN_AXE)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    print(f"\naxe on the {view} view: {len(violations)} violations, "
          f"{[(v['id'], v['impact']) for v in violations]}")
    assert serious == [], serious
    assert violations == [], violations  # none at all today: keep it that way
    assert console_errors(browser) == []

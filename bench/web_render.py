"""Render times of the jobs web page (``#/jobs``) in headless Chromium, for N jobs.

Starts what the web tests start: a real ``redis-server``
(:class:`lamina_service.redis_server.RedisServer`), the API under uvicorn in a thread
(``tests.service.conftest.LiveServer``), Debian's chromium + chromedriver through
selenium (``tests.web.browser.start_chromium``). Each N gets a tenant of its own, filled
through the queue's own producer (``Producer.submit``, what ``POST /v1/jobs`` calls after
validation); a tenth of the jobs are claimed and given three epochs, so the ``running``
filter has rows. Every time is taken in the page, never through WebDriver's polls:

- ``first``: the page's own ``Lamina.jobsView.state.firstRenderAt`` (``performance.now()``
  after navigation once the first rows are in the DOM: the newest 200 when the list has
  more, shown while the rest is read); ``all``: ``state.completeAt``, once the whole list
  is read and rendered (a page from before the early render has only ``firstRenderAt``,
  stamped then, and the two are equal); ``load`` is that list read + render
  (``state.lastRenderMs``), ``fetch`` the first load's list requests as the browser timed
  them (Resource Timing: first request's start to last response's end, wall time, as
  requests overlap), ``reads`` how many there were.
- ``filter`` / ``sort`` / ``page``: on all N rows (the filter cleared before each op,
  untimed), the status filter set to ``running``, the name column's sort button (a full
  sort each time), the next page (back to the first, untimed, from the last; ``-`` when
  all rows fit one page of 50);
  each dispatched in the page and timed with ``performance.now()``: the handler with
  the style and layout it causes (forced by reading ``offsetHeight``), and in
  parentheses until the next frame (``requestAnimationFrame`` then a task: paint
  included, but frames come every ~16.7 ms, so that figure is mostly the frame's wait).
- ``epoch lag``: a running job records an epoch (``Consumer.record_epoch``); the lag is
  from the event's write (its tenant-stream id is Redis's clock in ms) to the page's
  re-render of that row (``state.applied[id]``, ``Date.now()``), the measure of
  docs/operations.md's "within a second" (``tests.web.browser.LIVE_SECONDS``).

Each round is a fresh navigation; per round the ops are repeated ``--repeats`` times and
their median kept; the table gives the median over rounds and each round's
:class:`quiet.Span` (``others`` = CPU the rest of the machine used; this process tree
holds the API, Redis, chromedriver and Chromium).

Run: ``python bench/web_render.py [--jobs 50,500,5000] [--rounds 3] [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("sdk", "services", "worker"):
    sys.path.insert(0, os.path.join(ROOT, sub))
sys.path.insert(0, ROOT)  # tests.service.conftest, tests.web.browser: the tests' helpers
sys.path.insert(0, os.path.join(ROOT, "bench"))

import quiet  # noqa: E402

OPS = ("filter", "sort", "page")
# One op dispatched in the page after an untimed reset (the filter cleared, which also
# shows the first page; back to the first page from the last); resolves with [handler +
# style and layout ms (forced by reading a layout property), ms to the next frame
# (frames come every ~16.7 ms)].
_TIMED = """const [what, done] = [arguments[0], arguments[arguments.length - 1]];
const $ = (id) => document.getElementById(id);
const change = (id, value) => { $(id).value = value; $(id).dispatchEvent(new Event("change")); };
if ($("filter-status").value) change("filter-status", "");
if (what === "page" && $("next").disabled) change("page-size", $("page-size").value);
const act = {
  filter: () => change("filter-status", "running"),
  sort: () => document.querySelector("th[data-key='name'] button").click(),
  page: () => $("next").click(),
}[what];
void document.body.offsetHeight;
const t0 = performance.now();
act();
void document.body.offsetHeight;
const t1 = performance.now();
requestAnimationFrame(() => setTimeout(() => done([t1 - t0, performance.now() - t0]), 0));"""
# When the whole list was rendered (a page without completeAt stamped firstRenderAt then).
_ALL = "const s = Lamina.jobsView.state; return s.completeAt ?? s.firstRenderAt"
# The first load's list reads (/v1/dashboard/jobs?...) as the browser timed them:
# [wall ms from the first start to the last response end, number of reads].
_FETCH = """const done = arguments[0];
const reads = performance.getEntriesByType('resource')
  .filter(e => e.name.includes('/v1/dashboard/jobs?') && e.startTime <= done);
return [Math.max(...reads.map(e => e.responseEnd)) - Math.min(...reads.map(e => e.startTime)),
        reads.length]"""
_READY = "const s = Lamina.jobsView.state; return s.streaming && !s.loading && s.loaded"
_ROWS = "return document.querySelectorAll('#jobs tbody tr').length"


def job_spec() -> dict:
    from tests.service.conftest import seq_model

    return {"model": seq_model(), "compile": {"optimizer": "adam", "loss": "mse"},
            "fit": {"epochs": 100, "batch_size": 4}, "callbacks": [], "replicas": 1}


def fill(app, tenant: str, n: int) -> tuple:
    """``n`` jobs of ``tenant``; a tenth (at least one) claimed with three epochs each.
    Returns the consumer and its claimed jobs (for live epochs)."""
    from lamina_service.queue import Consumer, Producer

    producer = Producer(app.state.redis, app.state.settings)
    spec = job_spec()
    for i in range(n):
        producer.submit(tenant, spec, dataset_id="d_x", name=f"run-{i:05d}")
    consumer = Consumer(app.state.redis, app.state.settings, f"w-{tenant}")
    claimed = []
    while len(claimed) < max(1, n // 10):
        job = consumer.claim(block_ms=100)
        assert job is not None, f"no queued job of {tenant} left to claim"
        if job.tenant != tenant:  # claims go round the tenants: an earlier N's job
            continue
        for epoch in range(3):
            consumer.record_epoch(job, epoch, {"loss": 1.0 / (epoch + 1),
                                               "val_loss": 1.5 / (epoch + 1)})
        claimed.append(job)
    return consumer, claimed


def epoch_lag(browser, consumer, job, epoch: int) -> float:
    """ms from the epoch event's write to the page's re-render of the job's row."""
    from tests.web.browser import wait_for

    before = browser.execute_script(
        "return Lamina.jobsView.state.applied[arguments[0]] || 0", job.id)
    consumer.record_epoch(job, epoch, {"loss": 0.1, "val_loss": 0.2})
    applied = wait_for(browser, lambda b: (a := b.execute_script(
        "return Lamina.jobsView.state.applied[arguments[0]] || 0", job.id)) > before and a,
        f"epoch {epoch} of {job.id} applied", timeout=20)
    event_id = browser.execute_script("return Lamina.jobsView.state.lastEventId")
    return applied - int(event_id.split("-")[0])


def one_round(browser, url: str, key: str, n: int, consumer, job, epoch: int,
              repeats: int) -> dict:
    from tests.web.browser import open_with_key, wait_for

    open_with_key(browser, url, key, "#/jobs")
    wait_for(browser, lambda b: b.execute_script(_READY), "the list read and the stream open",
             timeout=120)
    wait_for(browser, lambda b: b.execute_script(_ROWS) == min(n, 50), "the first page")
    done = browser.execute_script(_ALL)
    fetch, reads = browser.execute_script(_FETCH, done)
    out = {"first": browser.execute_script("return Lamina.jobsView.state.firstRenderAt"),
           "all": done, "load": browser.execute_script("return Lamina.jobsView.state.lastRenderMs"),
           "fetch": fetch, "reads": reads}
    count = browser.find_element("id", "count").text
    assert count == f"{n} of {n} jobs", count
    for op in OPS:
        if op == "page" and n <= 50:  # one page of rows (the page's default size): no op
            out[op] = out[op + "_frame"] = None
            continue
        times = [browser.execute_async_script(_TIMED, op) for _ in range(repeats)]
        out[op] = statistics.median(t[0] for t in times)
        out[op + "_frame"] = statistics.median(t[1] for t in times)
    lags = []
    for k in range(repeats):
        lags.append(epoch_lag(browser, consumer, job, epoch + k))
        time.sleep(0.05)
    out["lag"] = statistics.median(lags)
    return out


def run(sizes: list[int], rounds: int, repeats: int) -> list[dict]:
    import httpx

    from lamina_service.api import create_app
    from lamina_service.config import Settings
    from lamina_service.redis_server import RedisServer
    from tests.service.conftest import LiveServer
    from tests.web.browser import (
        console_errors,
        leave_page,
        open_with_key,
        start_chromium,
        wait_for,
    )

    results = []
    redis_server = RedisServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="lamina-web-bench-") as tmp:
            keys = {f"key-{n}": f"tenant-{n}" for n in sizes}
            app = create_app(Settings(redis_url=redis_server.url, api_keys=keys,
                                      storage_root=os.path.join(tmp, "storage")))
            browser = start_chromium(os.path.join(tmp, "profile"),
                                     os.path.join(tmp, "downloads"))
            try:
                with LiveServer(app) as server:
                    try:
                        for i, n in enumerate(sizes):
                            started = time.perf_counter()
                            consumer, claimed = fill(app, f"tenant-{n}", n)
                            filled = time.perf_counter() - started
                            # the API's first parameter count imports Lamina (~1 s, once per
                            # process): measured is the page against a warm API
                            httpx.get(server.url + "/v1/dashboard/jobs?limit=1", timeout=60,
                                      headers={"Authorization": f"Bearer key-{n}"}
                                      ).raise_for_status()
                            if i == 0:  # Chromium's first page (cold scripts) is no round
                                open_with_key(browser, server.url, f"key-{n}", "#/jobs")
                                wait_for(browser, lambda b: b.execute_script(_READY),
                                         "the warm-up page", timeout=120)
                            for r in range(rounds):
                                with quiet.Span() as span:
                                    figures = one_round(browser, server.url, f"key-{n}", n,
                                                        consumer, claimed[0], 3 + r * repeats,
                                                        repeats)
                                figures.update(jobs=n, round=r, span=span.as_dict(),
                                               describe=span.describe(), fill_s=filled)
                                results.append(figures)
                                print(f"{n} jobs round {r}: first {figures['first']:.0f} ms, "
                                      f"all {figures['all']:.0f} ms, "
                                      f"filter {figures['filter']:.1f} ms, lag "
                                      f"{figures['lag']:.0f} ms ({span.describe()}, load "
                                      f"{span.load1:.1f})", flush=True)
                            errors = console_errors(browser)
                            assert errors == [], errors
                    finally:  # the page's event streams closed before the server
                        leave_page(browser)  # stops (uvicorn waits for them)
            finally:
                browser.quit()
    finally:
        redis_server.cleanup()
    return results


def table(results: list[dict]) -> str:
    lines = ["| jobs | first rows ms | all rows ms | list read + render ms | list fetch ms "
             "(reads) | filter ms | sort ms | page ms | epoch lag ms | rounds | "
             "others CPU (max) | load (max) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in dict.fromkeys(r["jobs"] for r in results):
        rs = [r for r in results if r["jobs"] == n]

        def med(key, rs=rs):
            return statistics.median(r[key] for r in rs)

        ops = " | ".join("-" if rs[0][op] is None else
                         f"{med(op):.1f} ({med(op + '_frame'):.0f})" for op in OPS)
        others = max(r["span"]["others"] for r in rs)
        load = max(r["span"]["load1"] for r in rs)
        lines.append(f"| {n} | {med('first'):.0f} | {med('all'):.0f} | {med('load'):.0f} | "
                     f"{med('fetch'):.0f} ({rs[0]['reads']}) | {ops} | {med('lag'):.0f} | "
                     f"{len(rs)} | {others:.2f} | {load:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="50,500,5000",
                        help="comma-separated job counts (default 50,500,5000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7,
                        help="each op (and epoch) per round; the round keeps the median")
    parser.add_argument("--json", help="write every round's figures here")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.jobs.split(",")]
    except ValueError:
        parser.error(f"--jobs must be comma-separated integers; received {args.jobs!r}")
    if any(n < 1 for n in sizes) or args.rounds < 1 or args.repeats < 1:
        parser.error(f"--jobs, --rounds and --repeats must be >= 1; received jobs={sizes}, "
                     f"rounds={args.rounds}, repeats={args.repeats}")
    print(f"load before: {os.getloadavg()[0]:.2f}, {quiet.NCPU} CPUs", flush=True)
    results = run(sizes, args.rounds, args.repeats)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("\nJobs page (#/jobs) in headless Chromium; medians over rounds; ops: handler + "
          "layout ms (to the next frame)")
    print(table(results))


if __name__ == "__main__":
    main()

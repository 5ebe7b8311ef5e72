"""The jobs view's first load at scale in headless Chromium: the newest rows are in the
DOM as soon as the first list page arrived, the rest of the list is read a few pages at
a time, and the finished table holds every job in order; a later load never shows less."""

from __future__ import annotations

import pytest

from tests.web.browser import (
    console_errors,
    needs_chromium,
    open_with_key,
    wait_for,
)
from tests.web.test_browser_scale import fill

pytestmark = [needs_chromium, pytest.mark.slow]
N = 3500  # a first page of 200, then 4 pages of up to 1,000: more than run at once (3)

# Before any script of the page runs: the time the first row entered the table, and what
# the page said then (observed in the page, not through WebDriver's polls).
_OBSERVE = """window.laminaFirst = null;
new MutationObserver((_, observer) => {
  const tr = document.querySelector('#jobs tbody tr');
  if (!tr) return;
  observer.disconnect();
  window.laminaFirst = {at: performance.now(), id: tr.dataset.id,
                        msg: document.getElementById('msg').textContent,
                        busy: document.getElementById('jobs').getAttribute('aria-busy'),
                        count: document.getElementById('count').textContent};
}).observe(document, {childList: true, subtree: true});"""
# The list reads as the browser timed them (Resource Timing), in the order they started.
_LISTS = """return performance.getEntriesByType('resource')
  .filter(e => e.name.includes('/v1/dashboard/jobs?'))
  .map(e => ({url: e.name, start: e.startTime, end: e.responseEnd}))
  .sort((a, b) => a.start - b.start)"""
# Every row the table shows, page after page (each click re-renders synchronously).
_ALL_ROWS = """const $ = (id) => document.getElementById(id), seen = [];
$("page-size").value = "200"; $("page-size").dispatchEvent(new Event("change"));
for (;;) {
  for (const tr of document.querySelectorAll('#jobs tbody tr'))
    seen.push([tr.dataset.id, tr.cells[2].textContent]);
  if ($("next").disabled) return seen;
  $("next").click();
}"""
_WATCH_COUNT = """const count = document.getElementById('count');
window.laminaCounts = [];
new MutationObserver(() => window.laminaCounts.push(count.textContent))
  .observe(count, {childList: true, characterData: true, subtree: true});"""


@pytest.fixture
def browser(browser):
    """conftest's Chromium, recording the first row before any script of the page runs."""
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _OBSERVE})
    return browser


def test_first_rows_show_before_the_last_list_page_and_the_table_ends_whole(browser, app,
                                                                             live_server):
    import httpx

    ids = fill(app, "alice", N, with_history=0)
    newest_first = ids[::-1]  # the list's order (submit time, newest first)
    # the API's first parameter count imports Lamina (~1 s, once per process)
    httpx.get(live_server.url + "/v1/dashboard/jobs?limit=1",
              headers={"Authorization": "Bearer key-a"}, timeout=60).raise_for_status()
    open_with_key(browser, live_server.url, "key-a", "#/jobs")
    wait_for(browser, lambda b: b.execute_script(
        "const s = Lamina.jobsView.state; return s.loaded && !s.loading"), "the whole list read")

    first = browser.execute_script("return window.laminaFirst")
    lists = browser.execute_script(_LISTS)
    # the first page first; the others in any order among themselves: up to 3 start
    # together, and the browser timed two of them 1200/2200 once (a clean-clone CI run)
    pages = [entry["url"].split("?")[1] for entry in lists]
    assert pages[0] == "limit=200&offset=0", pages
    assert sorted(pages[1:], key=lambda page: int(page.rsplit("=", 1)[1])) == [
        "limit=1000&offset=200", "limit=1000&offset=1200", "limit=1000&offset=2200",
        "limit=1000&offset=3200"], pages
    # the first rows were in the DOM after the first page was answered and before any
    # other was: the page did not wait for the list
    assert lists[0]["end"] <= first["at"] < min(entry["end"] for entry in lists[1:]), (
        first, lists)
    assert first["id"] == newest_first[0]
    assert first["msg"] == f"Loading jobs: 200 of {N:,} read…"
    assert (first["busy"], first["count"]) == ("true", "200 of 200 jobs read so far")
    # the other pages were read a few at a time: at most 3 (and more than 1) in flight
    in_flight = [sum(1 for other in lists[1:] if other["start"] <= entry["start"] < other["end"])
                 for entry in lists[1:]]
    assert 2 <= max(in_flight) <= 3, lists

    assert browser.find_element("id", "count").text == f"{N} of {N} jobs"
    assert browser.find_element("id", "msg").text == ""
    assert browser.find_element("id", "jobs").get_attribute("aria-busy") is None
    assert [row[0] for row in browser.execute_script(_ALL_ROWS)] == newest_first
    browser.find_element("css selector", "th[data-key='name'] button").click()
    browser.find_element("css selector", "th[data-key='name'] button").click()
    names = [row[1] for row in browser.execute_script(_ALL_ROWS)]
    assert names == sorted(f"run-{i:03d}" for i in range(N))

    # a later load (a burst of events, the poll) keeps the whole table until it is done
    loads = browser.execute_script("return Lamina.jobsView.state.loads")
    browser.execute_script(_WATCH_COUNT)
    browser.execute_script("Lamina.jobsView.load()")
    wait_for(browser, lambda b: b.execute_script(
        "const s = Lamina.jobsView.state; return s.loads > arguments[0] && !s.loading", loads),
        "the second load")
    counts = browser.execute_script("return window.laminaCounts")
    assert counts and set(counts) == {f"{N} of {N} jobs"}, counts
    assert console_errors(browser) == []


# Once the first rows are shown, the page itself cancels one job and submits another
# through the API while the rest of the list is read; both reach the page through the
# event stream. Held: the later list reads wait in the page (real requests, sent late)
# until both changes' rows were applied, so the events land between the two renders
# and must outlive the final one (without the in-place update of the early table and
# requeue() both, the test fails); free: they land wherever they do (pages answered out
# of order then missed a row in 1 run of 5 before the in-order re-read).
_CHANGE_WHILE_LOADING = """const [cancel, body, hold] = [%s, %s, %s];
let release;
window.laminaHeld = new Promise((resolve) => { release = resolve; });
if (hold) {
  const real = window.fetch.bind(window);
  window.fetch = (url, options) => /\/v1\/dashboard\/jobs\?.*offset=[1-9]/.test(String(url))
    ? window.laminaHeld.then(() => real(url, options)) : real(url, options);
}
new MutationObserver((_, observer) => {
  if (!document.querySelector('#jobs tbody tr')) return;
  observer.disconnect();
  const headers = {Authorization: 'Bearer ' + sessionStorage.getItem('lamina_key'),
                   'Content-Type': 'application/json'};
  window.laminaChanged = Promise.all([
    fetch('/v1/jobs/' + cancel + '/cancel', {method: 'POST', headers}).then(r => r.status),
    fetch('/v1/jobs', {method: 'POST', headers, body}).then(r => r.json())]);
  window.laminaChanged.then(([, late]) => {
    const timer = setInterval(() => {
      const applied = Lamina.jobsView.state.applied;
      if (applied[cancel] && applied[late.id]) { clearInterval(timer); release(); }
    }, 5);
  });
}).observe(document, {childList: true, subtree: true});"""


@pytest.mark.parametrize("hold", [True, False], ids=["held", "free"])
def test_changes_during_the_first_load_end_in_the_table(browser, app, live_server, hold):
    """The event stream's guarantee holds across the early render: a job cancelled and
    a job submitted while the later pages are read end in the table as they are now,
    each row once (a submission shifts the later pages by one row)."""
    import json

    import httpx

    from tests.service.conftest import job_body, npz_bytes

    ids = fill(app, "alice", N, with_history=0)
    with httpx.Client(base_url=live_server.url, timeout=60,
                      headers={"Authorization": "Bearer key-a"}) as http:
        http.get("/v1/dashboard/jobs?limit=1").raise_for_status()
        dataset = http.post("/v1/datasets", content=npz_bytes()).json()["id"]
    # shown in the first rows: the first page read says queued, only its event says more
    cancelled = ids[-10]
    body = json.dumps(job_body(dataset, name="late"))
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": _CHANGE_WHILE_LOADING % (json.dumps(cancelled), json.dumps(body),
                                           json.dumps(hold))})
    open_with_key(browser, live_server.url, "key-a", "#/jobs")
    wait_for(browser, lambda b: b.execute_script("return !!window.laminaChanged"),
             "the changes sent once the first rows were shown")
    status, late = browser.execute_async_script(
        "window.laminaChanged.then(arguments[arguments.length - 1])")
    assert status == 200 and late["status"] == "queued", (status, late)
    rows = "return Lamina.jobsView.state.rows.map(r => [r.id, r.status])"
    wait_for(browser, lambda b: b.execute_script(
        "const s = Lamina.jobsView.state; return s.loaded && !s.loading && !s.pending.size "
        "&& !s.flushing") and dict(b.execute_script(rows)).get(cancelled) == "cancelled"
             and late["id"] in dict(b.execute_script(rows)), "both changes in the table")
    shown = browser.execute_script(rows)
    assert len(shown) == len({row_id for row_id, _ in shown}) == N + 1
    assert {row_id for row_id, _ in shown} == {*ids, late["id"]}
    assert browser.find_element("id", "count").text == f"{N + 1} of {N + 1} jobs"
    if hold:
        # the later pages, all read after the submission (totals 3,501 against the
        # first's 3,500), were read once more, in order
        lists = [e["url"].split("?")[1] for e in browser.execute_script(_LISTS)]
        assert lists[5:] == [f"limit=1000&offset={o}" for o in (200, 1200, 2200, 3200)], lists
        assert len(lists) == 9, lists
    assert console_errors(browser) == []

// Jobs view: every job of the tenant, loaded once and then kept live by the tenant's
// event stream (/v1/events): a job that changed state or finished an epoch has its row
// re-fetched. Only while the stream is down, a slow full poll stands in. Filter, search,
// sort and pages rendered client-side (only one page of rows is in the DOM).
"use strict";
Lamina.jobsView = (() => {
  const {$, el, json, say, badge, fmtNum, fmtInt, fmtDuration, fmtTime, duration, follow,
         headers} = Lamina;
  const BATCH = 20;  // more changed jobs than this at once: re-read the list instead
  const ORDER = {running: 0, queued: 1, failed: 2, cancelled: 3, succeeded: 4};
  const state = {rows: [], sortKey: "submitted_at", sortDir: -1, page: 0, selected: new Set(),
                 timer: null, loading: false, loaded: false, lastRenderMs: null,
                 firstRenderAt: null,
                 // live: the stream, the last event id, rows waiting to be re-fetched
                 abort: null, streamKey: null, streaming: false, lastEventId: null,
                 pending: new Set(), flushing: false, applied: {}, fallbackMs: 15000,
                 loads: 0};

  const progress = (r) => (r.epochs ? ((r.epoch ?? -1) + 1) / r.epochs : 0);
  const SORT = {
    status: (r) => ORDER[r.status], name: (r) => (r.name || "").toLowerCase(),
    model_class: (r) => r.model_class || "", params: (r) => r.params ?? -1,
    replicas: (r) => r.replicas, attempts: (r) => r.attempts, progress,
    best: (r) => (r.best ? r.best.value : Infinity), duration: (r) => duration(r) ?? -1,
    submitted_at: (r) => r.submitted_at,
  };

  async function load() {
    if (state.loading) { state.again = true; return; }  // read once more when this one ends
    state.again = false;
    state.loading = true; state.loads++;
    const t0 = performance.now(), since = Date.now();
    try {
      let rows = [], offset = 0;
      for (let guard = 0; guard < 20 && offset !== null; guard++) {
        const page = await json("/v1/dashboard/jobs?limit=1000&offset=" + offset);
        rows = rows.concat(page.items); offset = page.next_offset;
      }
      state.rows = rows; state.loaded = true;
      // rows re-fetched by events while this page was read may be newer: fetch again
      for (const [id, at] of Object.entries(state.applied)) if (at >= since) state.pending.add(id);
      if (state.pending.size) flush();
      render();
      state.lastRenderMs = performance.now() - t0;
      if (state.firstRenderAt === null) state.firstRenderAt = performance.now();
      if ($("msg").dataset.from === "jobs") say("");
    } catch (e) {
      if (e.status !== 401) { say("Could not list jobs: " + e.message); $("msg").dataset.from = "jobs"; }
    } finally {
      state.loading = false;
      if (state.again) load();
    }
  }

  function visible() {
    const status = $("filter-status").value, q = $("search").value.trim().toLowerCase();
    const key = SORT[state.sortKey], dir = state.sortDir;
    return state.rows
      .filter((r) => !status || r.status === status)
      .filter((r) => !q || r.id.toLowerCase().includes(q) || (r.name || "").toLowerCase().includes(q))
      .sort((a, b) => { const x = key(a), y = key(b); return x < y ? -dir : x > y ? dir : 0; });
  }

  function row(r) {
    const check = el("input", {type: "checkbox", "aria-label": "select " + (r.name || r.id),
                               checked: state.selected.has(r.id)});
    check.addEventListener("change", () => {
      if (check.checked) state.selected.add(r.id); else state.selected.delete(r.id);
      updateCompare();
    });
    const done = r.epoch === null ? 0 : r.epoch + 1;
    const epochCell = el("td", {}, el("span", {text: r.epochs ? done + "/" + r.epochs : String(done)}),
      r.epochs ? el("progress", {max: r.epochs, value: done,
                                 "aria-label": "epoch " + done + " of " + r.epochs}) : null);
    const best = r.best ? r.best.metric + " " + fmtNum(r.best.value) : "";
    return el("tr", {"data-id": r.id},
      el("td", {}, check), el("td", {title: r.error || null}, badge(r.status)),
      el("td", {}, el("a", {href: "#/job/" + r.id, text: r.name || r.id, title: r.id})),
      el("td", {text: r.model_class || ""}), el("td", {class: "num", text: fmtInt(r.params)}),
      el("td", {class: "num", text: r.replicas}), el("td", {class: "num", text: r.attempts}),
      epochCell, el("td", {class: "num", text: best}),
      el("td", {class: "num", text: fmtDuration(duration(r))}),
      el("td", {text: fmtTime(r.submitted_at)}));
  }

  function render() {
    const started = performance.now();
    const rows = visible(), size = Number($("page-size").value);
    const pages = Math.max(1, Math.ceil(rows.length / size));
    state.page = Math.min(state.page, pages - 1);
    const shown = rows.slice(state.page * size, (state.page + 1) * size);
    const body = $("jobs").tBodies[0];
    // Re-rendering must not steal keyboard focus from a row's link or checkbox.
    const active = document.activeElement, tr = active && active.closest ? active.closest("tr") : null;
    const focusId = tr && body.contains(tr) ? tr.dataset.id : null;
    const focusAt = focusId ? [...tr.querySelectorAll("a,input")].indexOf(active) : -1;
    body.replaceChildren(...shown.map(row));
    if (focusId) {
      const again = body.querySelector(`tr[data-id="${focusId}"]`);
      const target = again && again.querySelectorAll("a,input")[focusAt];
      if (target) target.focus();
    }
    $("page-label").textContent = "Page " + (state.page + 1) + " of " + pages;
    $("prev").disabled = state.page === 0; $("next").disabled = state.page >= pages - 1;
    $("count").textContent = rows.length + " of " + state.rows.length + " jobs";
    for (const th of $("jobs").tHead.rows[0].cells) {
      if (!th.dataset.key) continue;
      if (th.dataset.key === state.sortKey)
        th.setAttribute("aria-sort", state.sortDir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    state.renderMs = Math.max(state.renderMs || 0, performance.now() - started);
  }

  function updateCompare() {
    const n = state.selected.size;
    $("compare-selected").disabled = n < 2 || n > 8;
    $("compare-selected").textContent = "Compare selected (" + n + ")";
  }

  function init() {
    for (const th of $("jobs").tHead.rows[0].cells) {
      if (!th.dataset.key) continue;
      th.querySelector("button").addEventListener("click", () => {
        state.sortDir = state.sortKey === th.dataset.key ? -state.sortDir : -1;
        state.sortKey = th.dataset.key; render();
      });
    }
    for (const id of ["filter-status", "page-size"])
      $(id).addEventListener("change", () => { state.page = 0; render(); });
    $("search").addEventListener("input", () => { state.page = 0; render(); });
    $("prev").addEventListener("click", () => { state.page--; render(); });
    $("next").addEventListener("click", () => { state.page++; render(); });
    $("compare-selected").addEventListener("click", () => {
      location.hash = "#/compare/" + [...state.selected].join(",");
    });
    updateCompare();
  }

  // Re-fetch the rows of the jobs named by events; a job gone (expired) leaves the table.
  async function flush() {
    if (state.flushing) return;
    state.flushing = true;
    try {
      while (state.pending.size) {
        const ids = [...state.pending]; state.pending.clear();
        if (ids.length > BATCH) { await load(); continue; }  // a burst: one list read
        const rows = await Promise.all(ids.map((id) => json("/v1/dashboard/jobs/" + id)
          .then((s) => s.row, (e) => (e.status === 404 ? null : undefined))));
        ids.forEach((id, i) => {
          if (rows[i] === undefined) {  // a passing error (e.g. 429): read it again soon
            setTimeout(() => { state.pending.add(id); flush(); }, 2000);
            return;
          }
          const at = state.rows.findIndex((r) => r.id === id);
          if (rows[i] === null) { if (at >= 0) state.rows.splice(at, 1); }
          else if (at >= 0) state.rows[at] = rows[i];
          else state.rows.push(rows[i]);
        });
        render();
        const now = Date.now();
        for (const id of ids) state.applied[id] = now;
      }
    } finally { state.flushing = false; }
  }

  function onEvent(ev) {
    state.lastEventId = ev.id;
    if (ev.data && ev.data.job_id) state.pending.add(ev.data.job_id);
    flush();
  }

  function startPoll() { if (!state.timer) state.timer = setInterval(load, state.fallbackMs); }
  function stopPoll() { clearInterval(state.timer); state.timer = null; }

  async function stream(signal) {
    while (!signal.aborted) {
      let wait = 1000;
      try {
        // the table is (re)loaded once the stream is open: nothing falls in between
        await follow("/v1/events", onEvent, signal, state.lastEventId, () => {
          state.streaming = true; stopPoll(); load();
        });
      } catch (e) {
        if (e.name === "AbortError" || signal.aborted) return;
        if (e.status === 401) { state.streaming = false; state.abort = null; return; }
        if (e.status === 429) wait = 5000;
      }
      state.streaming = false;
      if (signal.aborted) return;
      if (!state.timer) load();
      startPoll();
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  function show() {
    const key = JSON.stringify(headers());
    if (state.abort && state.streamKey !== key) hide();  // another API key: another tenant
    if (state.abort) { load(); return; }
    state.abort = new AbortController(); state.streamKey = key; state.lastEventId = null;
    stream(state.abort.signal);
  }
  function hide() {
    stopPoll();
    if (state.abort) state.abort.abort();
    state.abort = null; state.streaming = false;
  }

  return {init, show, hide, load, state};
})();

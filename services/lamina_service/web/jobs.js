// Jobs view: every job of the tenant, loaded once and then kept live by the tenant's
// event stream (/v1/events): a job that changed state or finished an epoch has its row
// re-fetched. Only while the stream is down, a slow full poll stands in. Filter, search,
// sort and pages rendered client-side (only one page of rows is in the DOM).
// The first load shows the newest rows as soon as they arrive and reads the rest of the
// list a few pages at a time; later loads keep the full table until the new one is whole.
"use strict";
Lamina.jobsView = (() => {
  const {$, el, json, say, badge, fmtNum, fmtInt, fmtDuration, fmtTime, duration, follow,
         headers} = Lamina;
  const BATCH = 20;  // more changed jobs than this within BURST_MS: re-read the list instead
  const BURST_MS = 1000;  // row reads this recent count toward a burst
  const GATHER_MS = 250;  // in a burst, after each list read: let the rest of it arrive
  const FIRST = 200;  // the first read: a full page at the largest page size
  const CHUNK = 1000;  // the API's largest page
  const PARALLEL = 3;  // list reads in flight at once (the event stream holds a connection)
  const MAX_READS = 20;  // after the first: up to 20,000 more jobs
  const ORDER = {running: 0, queued: 1, failed: 2, cancelled: 3, succeeded: 4};
  const state = {rows: [], sortKey: "submitted_at", sortDir: -1, page: 0, selected: new Set(),
                 timer: null, loading: false, loaded: false, lastRenderMs: null,
                 // performance.now() when the first rows, and then all of them, were shown
                 firstRenderAt: null, completeAt: null, partial: false, retry: null,
                 // live: the stream, the last event id, rows waiting to be re-fetched
                 abort: null, streamKey: null, streaming: false, lastEventId: null,
                 pending: new Set(), flushing: false, applied: {}, fallbackMs: 15000,
                 loads: 0, rowReads: []};

  const progress = (r) => (r.epochs ? ((r.epoch ?? -1) + 1) / r.epochs : 0);
  const SORT = {
    status: (r) => ORDER[r.status], name: (r) => (r.name || "").toLowerCase(),
    model_class: (r) => r.model_class || "", params: (r) => r.params ?? -1,
    replicas: (r) => r.replicas, attempts: (r) => r.attempts, progress,
    best: (r) => (r.best ? r.best.value : Infinity), duration: (r) => duration(r) ?? -1,
    submitted_at: (r) => r.submitted_at,
  };

  const listPath = (offset, limit) => "/v1/dashboard/jobs?limit=" + limit + "&offset=" + offset;

  // The pages after the first, PARALLEL at a time, in list order; then, should jobs have
  // been submitted meanwhile (the list grew past total), on from the last next_offset.
  async function readRest(first, arrived) {
    const offsets = [];
    for (let at = first.next_offset; at < first.total && offsets.length < MAX_READS; at += CHUNK)
      offsets.push(at);
    const pages = new Array(offsets.length);
    let next = 0, read = first.items.length;
    const reader = async () => {
      while (next < offsets.length) {
        const i = next++;
        pages[i] = await json(listPath(offsets[i], CHUNK));
        arrived(read += pages[i].items.length);
      }
    };
    await Promise.all(Array.from({length: Math.min(PARALLEL, offsets.length)}, reader));
    const offset = offsets.length ? pages[pages.length - 1].next_offset : first.next_offset;
    return pages.concat(await readInOrder(offset, MAX_READS - pages.length));
  }

  async function readInOrder(offset, reads) {
    const pages = [];
    for (; offset !== null && pages.length < reads; offset = pages[pages.length - 1].next_offset)
      pages.push(await json(listPath(offset, CHUNK)));
    return pages;
  }

  // Rows of pages read at different moments: a job submitted between two reads shifts
  // the later pages by one, so a row can come twice (the first met is kept; a row that
  // changed meanwhile had an event, and requeue() reads it again). Read in list order,
  // pages never miss a row to a submission; read out of order, they can (see load()).
  function join(pages) {
    const seen = new Set(), rows = [];
    for (const page of pages)
      for (const r of page.items) if (!seen.has(r.id)) { seen.add(r.id); rows.push(r); }
    return rows;
  }

  function requeue(since) {  // rows re-fetched by events while the list was read may be newer
    for (const [id, at] of Object.entries(state.applied)) if (at >= since) state.pending.add(id);
    if (state.pending.size) flush();
  }

  function loadingSay(read, total) {
    say("Loading jobs: " + fmtInt(read) + " of " + fmtInt(total) + " read…");
    $("msg").dataset.from = "jobs";
  }

  async function load() {
    if (state.loading) { state.again = true; return; }  // read once more when this one ends
    state.again = false;
    state.loading = true; state.loads++;
    clearTimeout(state.retry); state.retry = null;
    const t0 = performance.now(), since = Date.now();
    const early = !state.loaded;  // a reload keeps the whole table until the new one is in
    try {
      const first = await json(listPath(0, FIRST));
      if (early && first.next_offset !== null) {
        // the table's rows are the first page's own: rows events re-fetch meanwhile are
        // replaced or added in it (flush), and join() below meets them first
        state.rows = first.items; state.partial = true;
        $("jobs").setAttribute("aria-busy", "true");
        render();
        if (state.firstRenderAt === null) state.firstRenderAt = performance.now();
        loadingSay(first.items.length, first.total);
        requeue(since);
      }
      let rest = first.next_offset === null ? []
        : await readRest(first, (read) => { if (early) loadingSay(read, first.total); });
      // The list changed during the reads (a job submitted, an expired one dropped): a
      // page answered before an earlier one may have missed the row the change moved
      // across their boundary. Read in order once more (a row can then come twice only).
      if (rest.some((page) => page.total !== first.total))
        rest = await readInOrder(first.next_offset, MAX_READS);
      state.rows = join([first, ...rest]); state.loaded = true; state.partial = false;
      $("jobs").removeAttribute("aria-busy");
      requeue(since);
      render();
      state.lastRenderMs = performance.now() - t0;
      if (state.firstRenderAt === null) state.firstRenderAt = performance.now();
      if (state.completeAt === null) state.completeAt = performance.now();
      if ($("msg").dataset.from === "jobs") say("");
    } catch (e) {
      if (e.status !== 401) {
        say("Could not list jobs: " + e.message); $("msg").dataset.from = "jobs";
        // a table left partial would stay so while the stream is up: read it again
        if (!state.loaded) state.retry = setTimeout(load, 5000);
      }
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
    $("count").textContent = rows.length + " of " + state.rows.length + " jobs" +
      (state.partial ? " read so far" : "");
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
        // A burst: more than BATCH changed jobs within BURST_MS, at once or trickling in
        // (a loaded machine spreads one client's 60 submissions over many events). One
        // list read covers them; the pause after it gathers the rest of the burst.
        const at = performance.now();
        state.rowReads = state.rowReads.filter((t) => at - t < BURST_MS);
        if (state.pending.size + state.rowReads.length > BATCH) {
          state.pending.clear();
          await load();
          await new Promise((resolve) => setTimeout(resolve, GATHER_MS));
          continue;
        }
        const ids = [...state.pending]; state.pending.clear();
        for (let i = 0; i < ids.length; i++) state.rowReads.push(at);
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
    if (state.abort && state.streamKey !== key) {  // another API key: another tenant
      hide(); state.rows = []; state.loaded = false; render();
    }
    if (state.abort) { load(); return; }
    state.abort = new AbortController(); state.streamKey = key; state.lastEventId = null;
    stream(state.abort.signal);
  }
  function hide() {
    stopPoll(); clearTimeout(state.retry); state.retry = null;
    if (state.abort) state.abort.abort();
    state.abort = null; state.streaming = false;
  }

  return {init, show, hide, load, state};
})();

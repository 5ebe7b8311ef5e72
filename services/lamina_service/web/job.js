// Job view: one chart per metric (train and validation overlaid), live from the job's
// event stream; status timeline, per-epoch logs, model summary, settings and actions.
"use strict";
Lamina.jobView = (() => {
  const {$, el, json, api, follow, say, fmtNum, fmtInt, fmtTime, eventTime, copy,
         PALETTE, TERMINAL} = Lamina;
  const state = {id: null, summary: null, history: {}, charts: {}, abort: null,
                 status: null, lastEventId: null, lastEpochAt: null, batches: [],
                 perf: []};  // per epoch, measured by the worker: {samples_per_second, allreduce_share}

  const mode = (m) => (/acc|auc|precision|recall|f1|iou|fmeasure/i.test(m) ? "max" : "min");
  const groups = () => {
    const bases = new Set(Object.keys(state.history).map((k) => k.replace(/^val_/, "")));
    return [...bases].sort((a, b) => (a === "loss" ? -1 : b === "loss" ? 1 : a.localeCompare(b)));
  };

  function monitor() {
    const best = state.summary && state.summary.row.best;
    for (const cb of (state.summary && state.summary.callbacks) || [])
      if (cb.class_name === "EarlyStopping" && state.history[(cb.config || {}).monitor || "val_loss"])
        return (cb.config || {}).monitor || "val_loss";
    return best ? best.metric : state.history.val_loss ? "val_loss" : state.history.loss ? "loss" : null;
  }

  function markers() {
    const out = [], m = monitor();
    if (m) {
      const ys = state.history[m] || [];
      let at = -1;
      ys.forEach((v, i) => {
        if (v === null) return;
        if (at < 0 || (mode(m) === "max" ? v > ys[at] : v < ys[at])) at = i;
      });
      if (at >= 0) out.push({x: at + 1, label: "best " + m, color: "#000000"});
    }
    const lr = state.history.learning_rate || state.history.lr || [];
    for (let i = 1; i < lr.length; i++)
      if (lr[i] !== null && lr[i - 1] !== null && lr[i] !== lr[i - 1])
        out.push({x: i + 1, label: "lr " + fmtNum(lr[i]), color: "#882255"});
    return out;
  }

  function drawCharts() {
    const box = $("charts");
    for (const base of groups()) {
      const names = [base, "val_" + base].filter((k) => state.history[k]);
      const data = Lamina.charts.columns(state.history, names);
      const chart = state.charts[base];
      const wantLog = /loss|learning_rate|^lr$/.test(base);
      if (chart && chart.names.join() === names.join() &&
          chart.log === (wantLog && data.slice(1).every((ys) => ys.every((v) => v === null || v > 0)))) {
        chart.setData(data);
        continue;
      }
      if (chart) { chart.root.parentNode.remove(); chart.destroy(); }
      const series = names.map((k) => ({label: k.startsWith("val_") ? "validation" : "train",
                                        color: k.startsWith("val_") ? PALETTE[1] : PALETTE[0],
                                        dash: k.startsWith("val_") ? [6, 4] : null}));
      const made = Lamina.charts.create(box, base, series, data,
                                        {log: wantLog, markers, width: 640, height: 260});
      made.names = names;
      state.charts[base] = made;
    }
    box.dataset.epochs = String(Math.max(0, ...Object.values(state.history).map((v) => v.length)));
  }

  const percent = (v) => (typeof v === "number" ? fmtNum(100 * v) + " %" : "");
  // " · 1234 samples/s · all-reduce 12 %" for an epoch the worker measured, else ""
  function perfText(p) {
    if (!p) return "";
    return (typeof p.samples_per_second === "number"
      ? " · " + fmtNum(p.samples_per_second) + " samples/s" : "") +
      (typeof p.allreduce_share === "number" ? " · all-reduce " + percent(p.allreduce_share) : "");
  }

  function epochTable() {
    const names = Object.keys(state.history).sort();
    $("epochs").tHead.replaceChildren(el("tr", {}, el("th", {scope: "col", text: "epoch"}),
      ...names.map((k) => el("th", {scope: "col", class: "num", text: k}))));
    const withPerf = state.perf.some((p) => p);
    if (withPerf) $("epochs").tHead.rows[0].append(
      el("th", {scope: "col", class: "num", text: "samples/s"}),
      el("th", {scope: "col", class: "num", text: "all-reduce share"}));
    const n = Math.max(0, ...names.map((k) => state.history[k].length));
    const rows = [];
    for (let i = n - 1; i >= 0; i--) {
      const p = state.perf[i] || {};
      rows.push(el("tr", {}, el("th", {scope: "row", text: String(i + 1)}),
        ...names.map((k) => el("td", {class: "num", text: fmtNum(state.history[k][i])})),
        withPerf ? el("td", {class: "num", text: fmtNum(p.samples_per_second)}) : null,
        withPerf ? el("td", {class: "num", text: percent(p.allreduce_share)}) : null));
    }
    $("epochs").tBodies[0].replaceChildren(...rows);
  }

  function setStatus(status, cancelRequested) {
    state.status = status;
    $("job-status").className = "badge " + status;
    $("job-status").textContent = status;
    $("cancel").disabled = TERMINAL.has(status) || Boolean(cancelRequested);
    $("download").disabled = !(state.summary && state.summary.row.has_model);
  }

  function timelineEntry(ev) {
    const d = ev.data, parts = [d.status];
    if (d.requeued) parts.push("(requeued: " + d.requeued + ")");
    if (d.status === "running" && d.attempt) parts.push("attempt " + d.attempt);
    if (d.worker) parts.push("on worker " + d.worker);
    if (d.resumed_from) parts.push("resumed from epoch " + (d.resumed_from.epoch + 1));
    if (d.cancel_requested) parts.push("cancel requested");
    if (d.retry) parts.push("will retry");
    if (d.error) parts.push("error: " + d.error);
    const t = eventTime(ev.id);
    $("timeline").append(el("li", {}, el("time", {datetime: new Date(t * 1000).toISOString(),
                                                  text: fmtTime(t)}),
                                   el("span", {class: "what", text: parts.join(" ")})));
  }

  function settings(s) {
    const dl = $("settings"), add = (k, v) => dl.append(el("dt", {text: k}), el("dd", {text: v}));
    dl.replaceChildren();
    add("job id", s.row.id); add("dataset", s.dataset_id || "");
    add("replicas", String(s.row.replicas)); add("priority", s.row.priority);
    for (const [k, v] of Object.entries(s.compile)) add("compile." + k, JSON.stringify(v));
    for (const [k, v] of Object.entries(s.fit)) add("fit." + k, JSON.stringify(v));
    for (const cb of s.callbacks) add("callback", cb.class_name + " " + JSON.stringify(cb.config || {}));
    const layers = s.model.layers.map((l) => el("tr", {}, el("td", {text: l.name || ""}),
      el("td", {text: l.class_name || ""}),
      el("td", {text: l.output_shape ? "(" + l.output_shape.map((d) => d ?? "None").join(", ") + ")" : "?"}),
      el("td", {class: "num", text: fmtInt(l.params)})));
    layers.push(el("tr", {}, el("th", {scope: "row", colspan: 3, text: "Total parameters"}),
                   el("td", {class: "num", text: fmtInt(s.model.params)})));
    $("layers").tBodies[0].replaceChildren(...layers);
  }

  function onEvent(ev) {
    state.lastEventId = ev.id;
    if (ev.type === "epoch") {
      const {epoch, logs, samples_per_second, allreduce_share} = ev.data;
      if (samples_per_second !== undefined || allreduce_share !== undefined)
        state.perf[epoch] = {samples_per_second, allreduce_share};
      for (const [k, v] of Object.entries(logs || {})) {
        if (!state.history[k]) state.history[k] = [];
        while (state.history[k].length <= epoch) state.history[k].push(null);
        state.history[k][epoch] = typeof v === "number" ? v : null;
      }
      state.lastEpochAt = performance.now();
      drawCharts(); epochTable();
      $("job-progress").textContent = "epoch " + (epoch + 1) +
        (state.summary.fit.epochs ? " of " + state.summary.fit.epochs : "") + " done" +
        perfText(state.perf[epoch]);
    } else if (ev.type === "batch") {
      const d = ev.data, t = eventTime(ev.id);
      state.batches.push([t, d.batch]);
      let rate = "";
      const prev = state.batches.length > 1 ? state.batches[state.batches.length - 2] : null;
      if (prev && d.batch > prev[1] && t > prev[0])
        rate = " · ≈" + fmtNum((d.batch - prev[1]) * (state.summary.fit.batch_size || 32) /
                              (t - prev[0])) + " samples/s";
      $("job-progress").textContent = "epoch " + ((d.epoch ?? 0) + 1) + ": batch " + d.batch +
        (d.steps ? " of " + d.steps : "") + rate;
    } else if (ev.type === "state") {
      timelineEntry(ev);
      setStatus(ev.data.status, ev.data.cancel_requested);
    }
  }

  async function stream(id, signal) {
    while (state.id === id && !signal.aborted) {
      try {
        await follow("/v1/jobs/" + id + "/events", onEvent, signal, state.lastEventId);
        if (TERMINAL.has(state.status)) break;
      } catch (e) {
        if (e.name === "AbortError" || signal.aborted) return;
        if (e.status === 404 || e.status === 401) return;
        if (e.status === 429) say("Too many open event streams; retrying in 5 s.");
        await new Promise((r) => setTimeout(r, e.status === 429 ? 5000 : 1000));
        continue;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (state.id === id && !signal.aborted) {  // finished: pick up has_model, final logs
      state.summary = await json("/v1/dashboard/jobs/" + id);
      const row = state.summary.row;
      setStatus(row.status, row.cancel_requested);
      if (!$("timeline").children.length) {  // events trimmed or expired: the record's times
        for (const [t, what] of [[row.submitted_at, "submitted"], [row.started_at, "started"],
                                 [row.finished_at, row.status]])
          if (t) $("timeline").append(el("li", {}, el("time", {text: fmtTime(t)}),
                                         el("span", {class: "what", text: what})));
      }
    }
  }

  async function show(id) {
    hide();
    Object.assign(state, {id, history: {}, charts: {}, summary: null, status: null,
                          lastEventId: null, lastEpochAt: null, batches: [], perf: []});
    for (const part of ["charts", "timeline"]) $(part).replaceChildren();
    $("job-title").textContent = "Job " + id;
    try {
      const s = await json("/v1/dashboard/jobs/" + id);
      if (state.id !== id) return;
      state.summary = s;
      $("job-title").textContent = (s.row.name ? s.row.name + " · " : "") + id;
      document.title = "Lamina · " + (s.row.name || id);
      settings(s); setStatus(s.row.status, s.row.cancel_requested);
      state.history = JSON.parse(JSON.stringify(s.history));  // events then overwrite epochs
      drawCharts(); epochTable();
      state.abort = new AbortController();
      stream(id, state.abort.signal);  // replays the job's events from the start
    } catch (e) { say("Could not open job " + id + ": " + e.message); }
  }

  function hide() { if (state.abort) state.abort.abort(); state.abort = null; state.id = null; }

  async function cancel() {
    if (!window.confirm("Cancel job " + state.id + "?")) return;
    try {
      const job = await json("/v1/jobs/" + state.id + "/cancel", {method: "POST"});
      say(job.status === "cancelled" ? "Job cancelled." : "Cancel requested: the job stops after its current batch.");
      setStatus(job.status, job.cancel_requested);
    } catch (e) { say("Cancel failed: " + e.message); }
  }

  async function download() {
    try {
      const blob = await (await api("/v1/jobs/" + state.id + "/model")).blob();
      const url = URL.createObjectURL(blob);
      const a = el("a", {href: url, download: state.id + ".keras"});
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      say("Downloaded " + state.id + ".keras (" + fmtInt(blob.size) + " bytes).");
    } catch (e) { say("Download failed: " + e.message); }
  }

  function init() {
    $("cancel").addEventListener("click", cancel);
    $("download").addEventListener("click", download);
    $("copy-id").addEventListener("click", () => copy(state.id, "the job id"));
    $("copy-cli").addEventListener("click", () => copy(
      "lamina --url " + location.origin + " logs --follow " + state.id, "the lamina command"));
    $("copy-curl").addEventListener("click", () => copy(
      "curl -sS -H \"Authorization: Bearer $LAMINA_API_KEY\" " + location.origin + "/v1/jobs/" +
      state.id, "the curl command"));
  }

  return {init, show, hide, state, markers};
})();

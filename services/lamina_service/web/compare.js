// Compare view: 2-8 jobs, one metric overlaid (one colour and dash per job), and a table
// of their settings with the rows whose values differ marked (background and a ≠ sign).
"use strict";
Lamina.compareView = (() => {
  const {$, el, json, say, fmtNum, fmtInt, PALETTE} = Lamina;
  const DASHES = [null, [6, 4], [2, 3], [10, 3, 2, 3]];
  const state = {ids: [], jobs: [], chart: null, timer: null};

  function flat(s) {
    const out = {"name": s.row.name || "", "status": s.row.status,
                 "model": s.row.model_class || "", "parameters": fmtInt(s.model.params ?? s.row.params),
                 "layers": String(s.model.layers.length), "replicas": String(s.row.replicas),
                 "dataset": s.dataset_id || ""};
    for (const [k, v] of Object.entries(s.compile)) out["compile." + k] = JSON.stringify(v);
    for (const [k, v] of Object.entries(s.fit)) out["fit." + k] = JSON.stringify(v);
    for (const cb of s.callbacks) out["callback " + cb.class_name] = JSON.stringify(cb.config || {});
    if (s.row.best) out["best " + s.row.best.metric] = fmtNum(s.row.best.value) +
      " (epoch " + (s.row.best.epoch + 1) + ")";
    return out;
  }

  function table() {
    const flats = state.jobs.map(flat);
    const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))];
    $("compare-settings").tHead.replaceChildren(el("tr", {}, el("th", {scope: "col", text: "setting"}),
      ...state.jobs.map((s, i) => el("th", {scope: "col", style: "color:" + PALETTE[i]},
        el("a", {href: "#/job/" + s.row.id, text: s.row.name || s.row.id})))));
    $("compare-settings").tBodies[0].replaceChildren(...keys.map((k) => {
      const values = flats.map((f) => f[k] ?? "—");
      const differs = new Set(values).size > 1;
      return el("tr", {class: differs ? "diff" : null},
        el("th", {scope: "row", text: k}, differs ? el("span", {class: "sr-only", text: " (differs)"}) : null),
        ...values.map((v) => el("td", {text: v})));
    }));
  }

  function columns(metric) {
    const histories = {};
    state.jobs.forEach((s, i) => { histories["j" + i] = s.history[metric] || []; });
    return Lamina.charts.columns(histories, Object.keys(histories));
  }

  // While a compared job runs, re-read the jobs every 3 s and redraw in place.
  async function refresh() {
    if (!state.jobs.some((s) => !Lamina.TERMINAL.has(s.row.status))) return;
    const ids = state.ids;
    try {
      const jobs = await Promise.all(ids.map((id) => json("/v1/dashboard/jobs/" + id)));
      if (ids !== state.ids) return;
      state.jobs = jobs; table();
      if (state.chart) state.chart.setData(columns($("compare-metric").value));
    } catch (e) { say("Could not refresh the compared jobs: " + e.message); }
  }

  function chart() {
    const metric = $("compare-metric").value, box = $("compare-chart");
    if (state.chart) state.chart.destroy();
    box.replaceChildren();
    const series = state.jobs.map((s, i) => ({label: s.row.name || s.row.id, color: PALETTE[i],
                                             dash: DASHES[i % DASHES.length]}));
    state.chart = Lamina.charts.create(box, metric, series, columns(metric),
                                       {log: /loss/.test(metric), width: 1100, height: 380});
  }

  async function show(ids) {
    if (state.chart) state.chart.destroy();
    state.ids = ids.slice(0, 8); state.jobs = []; state.chart = null;
    $("compare-chart").replaceChildren(); $("compare-metric").replaceChildren();
    $("compare-settings").tHead.replaceChildren(); $("compare-settings").tBodies[0].replaceChildren();
    if (state.ids.length < 2) {
      $("compare-hint").textContent = "Select 2 to 8 jobs in the Jobs view, then press “Compare selected”.";
      return;
    }
    $("compare-hint").textContent = "Comparing " + state.ids.length + " jobs.";
    try {
      state.jobs = await Promise.all(state.ids.map((id) => json("/v1/dashboard/jobs/" + id)));
    } catch (e) { say("Could not load the jobs to compare: " + e.message); return; }
    const metrics = [...new Set(state.jobs.flatMap((s) => Object.keys(s.history)))].sort();
    const pick = ["val_loss", "loss"].find((m) => metrics.includes(m)) || metrics[0];
    $("compare-metric").replaceChildren(...metrics.map((m) => el("option", {value: m, text: m,
                                                                           selected: m === pick})));
    table();
    if (metrics.length) chart();
    if (!state.timer) state.timer = setInterval(refresh, 3000);
  }

  function init() { $("compare-metric").addEventListener("change", chart); }
  function hide() { clearInterval(state.timer); state.timer = null; }

  return {init, show, hide, state};
})();

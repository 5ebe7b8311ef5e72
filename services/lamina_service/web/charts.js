// uPlot charts with an epoch axis (integer ticks), values on hover (uPlot's live legend),
// log scale for positive losses, and vertical markers (best epoch, learning-rate changes).
"use strict";
Lamina.charts = (() => {
  const {el} = Lamina;

  // Vertical dashed lines at given epochs, labelled at the top of the plot.
  function markerPlugin(getMarkers) {
    return {hooks: {draw: [(u) => {
      const ctx = u.ctx, top = u.bbox.top, bottom = top + u.bbox.height;
      ctx.save();
      ctx.setLineDash([4, 4]); ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.font = (11 * devicePixelRatio) + "px system-ui";
      for (const m of getMarkers()) {
        const x = Math.round(u.valToPos(m.x, "x", true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
        ctx.strokeStyle = m.color; ctx.fillStyle = m.color;
        ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
        const right = x > u.bbox.left + u.bbox.width * 0.7;  // keep the label inside the plot
        ctx.textAlign = right ? "right" : "left";
        ctx.fillText(m.label, x + (right ? -3 : 3) * devicePixelRatio, top + 12 * devicePixelRatio);
      }
      ctx.restore();
    }]}};
  }

  const positive = (columns) => columns.every((ys) => ys.every((v) => v === null || v > 0));

  // series: [{label, color, dash}], data: [xs, ...ys]; options: {log, markers, width, height}
  function create(target, title, series, data, options = {}) {
    const markers = options.markers || (() => []);
    const log = Boolean(options.log) && positive(data.slice(1));
    const box = el("figure", {class: "chart", "aria-label": title});
    const caption = el("figcaption", {}, el("h3", {text: title + (log ? " (log scale)" : "")}));
    box.append(caption);
    target.append(box);
    const opts = {
      width: options.width || 640, height: options.height || 260,
      scales: {x: {time: false, range: (u, lo, hi) => [Math.min(1, lo ?? 1), Math.max(hi ?? 1, 2)]},
               y: log ? {distr: 3} : {}},
      axes: [{label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
              values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : ""))},
             {size: 60, values: (u, vals) => vals.map((v) => Lamina.fmtNum(v))}],
      series: [{label: "epoch", value: (u, v) => (v === null ? "" : String(v))},
               ...series.map((s) => ({label: s.label, stroke: s.color, width: 2,
                                     dash: s.dash || undefined, spanGaps: true,
                                     points: {show: true, size: 5},
                                     value: (u, v) => Lamina.fmtNum(v)}))],
      cursor: {drag: {x: false, y: false}},
      plugins: [markerPlugin(markers)],
    };
    const chart = new uPlot(opts, data, box);
    chart.log = log;
    return chart;
  }

  // Columns [xs, ...ys] for metrics over epochs 1..n (missing values null).
  function columns(history, names) {
    const n = Math.max(0, ...names.map((k) => (history[k] || []).length));
    const xs = Array.from({length: n}, (_, i) => i + 1);
    return [xs, ...names.map((k) => xs.map((_, i) => {
      const v = (history[k] || [])[i];
      return v === undefined ? null : v;
    }))];
  }

  return {create, columns};
})();

"""The HTML of the built-in dashboard (kept in Python so every install ships it).

Plain HTML and inline JavaScript, no external assets: a jobs table from
``GET /v1/jobs`` and, for the selected job, loss/metric curves drawn on a
``<canvas>`` from its Server-Sent Events. An API key typed into the page is
kept in ``localStorage`` and sent as a bearer header (EventSource cannot send
headers, so the page reads the SSE stream with ``fetch``).
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lamina jobs</title>
<style>
 body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}
 table{border-collapse:collapse;margin-top:.5rem}
 td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
 tr.sel{background:#eef} tr{cursor:pointer}
 #chart{border:1px solid #ccc;margin-top:1rem}
 .succeeded{color:#080}.failed{color:#b00}.running{color:#06c}.cancelled{color:#888}
</style></head><body>
<h1>Lamina jobs</h1>
<label>API key <input id="key" type="password" size="30"></label>
<button id="refresh">Refresh</button> <span id="msg"></span>
<table id="jobs"><thead><tr><th>id</th><th>name</th><th>status</th><th>attempts</th>
<th>epoch</th><th>submitted</th></tr></thead><tbody></tbody></table>
<h2 id="title">Select a job</h2>
<canvas id="chart" width="720" height="320"></canvas>
<div id="legend"></div>
<script>
"use strict";
const keyBox = document.getElementById("key");
keyBox.value = localStorage.getItem("lamina_key") || "";
keyBox.onchange = () => { localStorage.setItem("lamina_key", keyBox.value); load(); };
function headers() { return keyBox.value ? {Authorization: "Bearer " + keyBox.value} : {}; }
let selected = null, curves = {}, follow = null;
const COLORS = ["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b"];

function td(text) { const c = document.createElement("td"); c.textContent = text; return c; }

async function load() {
  const msg = document.getElementById("msg");
  try {
    const r = await fetch("/v1/jobs?limit=100", {headers: headers()});
    const body = await r.json();
    if (!r.ok) { msg.textContent = body.error ? body.error.message : r.status; return; }
    msg.textContent = "";
    const tbody = document.querySelector("#jobs tbody");
    tbody.replaceChildren();
    for (const j of body.items) {
      const tr = document.createElement("tr");
      tr.dataset.id = j.id;
      if (j.id === selected) tr.className = "sel";
      const st = td(j.status); st.className = j.status;
      tr.append(td(j.id), td(j.name || ""), st, td(j.attempts),
                td(j.epoch === null ? "" : j.epoch),
                td(new Date(j.submitted_at * 1000).toLocaleTimeString()));
      tr.onclick = () => select(j.id);
      tbody.append(tr);
    }
    if (!selected && body.items.length) select(body.items[0].id);
  } catch (e) { msg.textContent = String(e); }
}

function draw() {
  const cv = document.getElementById("chart"), g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  const names = Object.keys(curves).sort();
  let n = 0, lo = Infinity, hi = -Infinity;
  for (const k of names) for (const v of curves[k]) if (v !== null) {
    n = Math.max(n, curves[k].length); lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  if (!n) return;
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = 40, W = cv.width - 2 * pad, H = cv.height - 2 * pad;
  g.strokeStyle = "#999"; g.strokeRect(pad, pad, W, H);
  g.fillStyle = "#444"; g.fillText(hi.toPrecision(3), 2, pad + 4);
  g.fillText(lo.toPrecision(3), 2, pad + H); g.fillText("epoch", pad + W - 30, pad + H + 20);
  names.forEach((k, i) => {
    const color = COLORS[i % COLORS.length], ys = curves[k];
    g.strokeStyle = color; g.beginPath();
    ys.forEach((v, x) => {
      if (v === null) return;
      const px = pad + (n === 1 ? W / 2 : W * x / (n - 1)), py = pad + H * (hi - v) / (hi - lo);
      x === 0 ? g.moveTo(px, py) : g.lineTo(px, py);
      g.fillStyle = color; g.fillRect(px - 2, py - 2, 4, 4);
    });
    g.stroke();
    const s = document.createElement("span");
    s.style.color = color; s.textContent = "\u25A0 " + k + "  "; legend.append(s);
  });
  cv.dataset.points = String(n);
}

function addEpoch(logs) {
  const idx = Math.max(0, ...Object.values(curves).map(v => v.length));
  for (const [k, v] of Object.entries(logs)) {
    if (!curves[k]) curves[k] = new Array(idx).fill(null);
  }
  for (const k of Object.keys(curves)) curves[k].push(k in logs ? logs[k] : null);
  draw();
}

async function select(id) {
  selected = id; curves = {}; draw();
  document.getElementById("title").textContent = "Job " + id;
  for (const tr of document.querySelectorAll("#jobs tbody tr"))
    tr.className = tr.dataset.id === id ? "sel" : "";
  if (follow) follow.abort();
  follow = new AbortController();
  try {
    const r = await fetch("/v1/jobs/" + id + "/events",
                          {headers: headers(), signal: follow.signal});
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        let type = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) type = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (type === "epoch") addEpoch(JSON.parse(data).logs);
        if (type === "state") load();
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") document.getElementById("msg").textContent = String(e);
  }
}

document.getElementById("refresh").onclick = load;
load();
setInterval(load, 5000);
</script></body></html>
"""

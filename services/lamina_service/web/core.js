// Shared helpers: the API key (sessionStorage, this tab only; never in a URL), fetch with
// the bearer header, the SSE reader (EventSource cannot send headers), formatting.
"use strict";
window.Lamina = (() => {
  const KEY = "lamina_key";
  const $ = (id) => document.getElementById(id);
  const key = () => sessionStorage.getItem(KEY) || "";
  const headers = () => (key() ? {Authorization: "Bearer " + key()} : {});

  function say(text) { $("msg").textContent = text || ""; }

  class ApiError extends Error {
    constructor(status, body) {
      super(body && body.error ? body.error.message : "HTTP " + status);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const r = await fetch(path, {...options, headers: {...headers(), ...(options.headers || {})}});
    if (!r.ok) {
      let body = null;
      try { body = await r.json(); } catch (e) { /* not JSON */ }
      if (r.status === 401) {
        say("This API needs a key: enter it above (kept for this browser tab only).");
        $("key").focus();
      }
      throw new ApiError(r.status, body);
    }
    return r;
  }
  const json = async (path, options) => (await api(path, options)).json();

  // Reads a text/event-stream body; calls onOpen() once the response arrived and
  // onEvent({id, type, data}) per event; lastId resumes after that event.
  async function follow(path, onEvent, signal, lastId, onOpen) {
    const extra = lastId ? {"Last-Event-ID": lastId} : {};
    const r = await api(path, {signal, headers: extra});
    if (onOpen) onOpen();
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buf += dec.decode(value, {stream: true});
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        let id = null, type = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("event: ")) type = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) onEvent({id, type, data: JSON.parse(data)});
      }
    }
  }

  // Stream ids are "<ms since epoch>-<seq>": the time the event was written.
  const eventTime = (id) => (id ? Number(id.split("-")[0]) / 1000 : null);

  function fmtNum(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return Number(v.toPrecision(4)).toExponential();
    return String(Number(v.toPrecision(4)));
  }
  function fmtInt(v) { return v === null || v === undefined ? "" : v.toLocaleString("en-US"); }
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || seconds < 0) return "";
    const s = Math.round(seconds);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function fmtTime(t) {
    if (!t) return "";
    const d = new Date(t * 1000);
    return d.toLocaleDateString("en-CA") + " " + d.toLocaleTimeString("en-GB");
  }
  const duration = (row) => (row.started_at
    ? (row.finished_at || Date.now() / 1000) - row.started_at : null);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }
  const badge = (status) => el("span", {class: "badge " + status, text: status});

  async function copy(text, what) {
    try { await navigator.clipboard.writeText(text); say("Copied " + what + "."); }
    catch (e) { window.prompt("Copy " + what + ":", text); }
  }

  // Okabe-Ito, without yellow (too light on white).
  const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                   "#000000", "#882255"];
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

  function initAuth() {
    $("key").value = key();
    $("auth").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem(KEY, $("key").value.trim());
      say(""); window.dispatchEvent(new Event("lamina:key"));
    });
    $("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY); $("key").value = "";
      window.dispatchEvent(new Event("lamina:key"));
    });
  }

  return {$, api, json, follow, say, eventTime, fmtNum, fmtInt, fmtDuration, fmtTime,
          duration, el, badge, copy, PALETTE, TERMINAL, initAuth, headers, ApiError};
})();

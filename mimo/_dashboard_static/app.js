// mimo's dashboard: draws the graph once, then applies each update the server sends.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (sel) => document.querySelector(sel);
let layout = null;      // {name, capacity, streams: [{name, ins, outs}], links: [...]}
let latest = null;      // the last state received
let selected = null;    // the stream whose figures are shown
const nodeOf = {};      // stream name -> its <g> in the picture
const edgeEls = [];     // link index -> its <g> in the picture

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const pct = (x) => `${Math.round(100 * x)}%`;
const rate = (r) => (r >= 100 ? fmt(r) : r.toFixed(1));

function el(tag, attrs = {}, text = null, ns = null) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

// A queue's fill (0..1) as a colour: green, through orange, to red when full.
function fillColor(f) {
  const stops = [[0, [43, 138, 62]], [0.5, [240, 140, 0]], [1, [201, 42, 42]]];
  for (let i = 1; i < stops.length; i++) {
    const [f1, c1] = stops[i];
    const [f0, c0] = stops[i - 1];
    if (f <= f1) {
      const t = (f - f0) / (f1 - f0);
      return `rgb(${c0.map((c, j) => Math.round(c + t * (c1[j] - c))).join(",")})`;
    }
  }
  return "rgb(201,42,42)";
}

async function start() {
  layout = await (await fetch("graph.json")).json();
  $("#name").textContent = layout.name;
  document.title = `${layout.name} · mimo`;
  buildTable();
  let svgText = null;
  try {
    const r = await fetch("graph.svg");
    if (r.ok) svgText = await r.text();
  } catch (e) { svgText = null; }
  if (svgText) adoptGraphviz(svgText); else drawPlain();
  const initial = await fetch("state");
  if (initial.ok) apply(await initial.json());
  listen();
}

function listen() {
  const source = new EventSource("events");
  source.onmessage = (ev) => apply(JSON.parse(ev.data));
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED || (latest && latest.outcome !== "running")) {
      source.close();
      const o = $("#outcome");
      if (latest && latest.outcome !== "running") o.textContent = `${latest.outcome}; server stopped`;
      else { o.textContent = "disconnected"; o.className = "outcome disconnected"; }
    }
  };
}

// -- the picture ---------------------------------------------------------------------------

function adoptGraphviz(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = document.importNode(doc.documentElement, true);
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  const vb = svg.getAttribute("viewBox").split(/\s+/).map(Number);
  vb[1] -= 14; // room for the mark above the top stream
  vb[3] += 14 + 18; // and for the rate under the lowest one
  svg.setAttribute("viewBox", vb.join(" "));
  $("#graph").appendChild(svg);
  layout.streams.forEach((s, i) => {
    const g = svg.getElementById(`mimo-node-${i}`);
    if (!g) return;
    const texts = g.querySelectorAll("text");
    const nameText = texts[Math.min(s.ins.length, texts.length - 1)];
    decorateNode(g, s.name, nameText);
  });
  layout.links.forEach((lk, i) => {
    const g = svg.getElementById(`mimo-edge-${i}`);
    edgeEls[i] = g;
  });
}

function decorateNode(g, name, nameText) {
  g.setAttribute("data-stream", name);
  g.addEventListener("click", () => select(name));
  const box = g.getBBox();
  const r = el("text", { class: "rate", x: box.x + box.width / 2, y: box.y + box.height + 13, "text-anchor": "middle" },
    "", SVG_NS);
  g.appendChild(r);
  if (nameText) {
    const m = el("text", { class: "mark", x: box.x + box.width / 2, y: box.y - 4, "text-anchor": "middle" }, "", SVG_NS);
    g.appendChild(m);
  }
  nodeOf[name] = g;
}

// Without Graphviz: streams in columns by their distance from the sources, joins as curves.
function drawPlain() {
  const names = layout.streams.map((s) => s.name);
  const depth = Object.fromEntries(names.map((n) => [n, 0]));
  for (let pass = 0; pass < names.length; pass++) {
    let moved = false;
    for (const lk of layout.links) {
      if (lk.src !== lk.dst && depth[lk.dst] < depth[lk.src] + 1 && depth[lk.src] + 1 < names.length) {
        depth[lk.dst] = depth[lk.src] + 1;
        moved = true;
      }
    }
    if (!moved) break;
  }
  const cols = {};
  const pos = {};
  const W = 150, H = 40, GX = 110, GY = 46;
  for (const n of names) {
    const d = depth[n];
    cols[d] = (cols[d] || 0) + 1;
    pos[n] = { x: 10 + d * (W + GX), y: 24 + (cols[d] - 1) * (H + GY) };
  }
  const width = 20 + (Math.max(...Object.keys(cols).map(Number), 0) + 1) * (W + GX) - GX;
  const height = 40 + Math.max(...Object.values(cols), 1) * (H + GY);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}` }, null, SVG_NS);
  layout.links.forEach((lk, i) => {
    const a = pos[lk.src], b = pos[lk.dst];
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const g = el("g", { class: "edge", id: `mimo-edge-${i}` }, null, SVG_NS);
    const mx = (x1 + x2) / 2;
    g.appendChild(el("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 6},${y2}`, fill: "none", stroke: "black" },
      null, SVG_NS));
    g.appendChild(el("polygon", { points: `${x2 - 8},${y2 - 4} ${x2},${y2} ${x2 - 8},${y2 + 4}`, stroke: "black" },
      null, SVG_NS));
    g.appendChild(el("text", { x: mx, y: (y1 + y2) / 2 - 5, "text-anchor": "middle" }, "", SVG_NS));
    svg.appendChild(g);
    edgeEls[i] = g;
  });
  $("#graph").appendChild(svg);
  for (const n of names) {
    const p = pos[n];
    const g = el("g", { class: "node" }, null, SVG_NS);
    g.appendChild(el("rect", { x: p.x, y: p.y, width: W, height: H, rx: 8, stroke: "black" }, null, SVG_NS));
    const t = el("text", { x: p.x + W / 2, y: p.y + H / 2 + 5, "text-anchor": "middle" }, n, SVG_NS);
    g.appendChild(t);
    svg.appendChild(g);
    decorateNode(g, n, t);
  }
}

// -- the table -----------------------------------------------------------------------------

function buildTable() {
  const body = $("#streams tbody");
  for (const s of layout.streams) {
    const tr = el("tr", { "data-stream": s.name });
    tr.appendChild(el("td", { class: "name" }, s.name));
    for (const c of ["status", "in num", "out num", "rate num", "hist", "busy num", "blocked num", "starved num",
      "restarts num"]) tr.appendChild(el("td", { class: c }, ""));
    tr.querySelector(".hist").appendChild(el("svg", { class: "spark", viewBox: "0 0 120 22",
      preserveAspectRatio: "none" }, null, SVG_NS)).appendChild(el("polyline", { points: "" }, null, SVG_NS));
    tr.addEventListener("click", () => select(s.name));
    body.appendChild(tr);
  }
}

function sparkPoints(history) {
  if (!history.length) return "";
  const top = Math.max(...history, 1e-9);
  const step = history.length > 1 ? 120 / (history.length - 1) : 0;
  return history.map((r, i) => `${(i * step).toFixed(1)},${(21 - (20 * r) / top).toFixed(1)}`).join(" ");
}

// -- applying an update --------------------------------------------------------------------

function apply(state) {
  latest = state;
  const o = $("#outcome");
  o.textContent = state.outcome;
  o.className = `outcome ${state.outcome}`;
  $("#elapsed").textContent = `${state.elapsed_s.toFixed(1)} s · queues of ${state.capacity}`;
  const b = $("#bottleneck");
  if (state.bottleneck) {
    b.textContent = `bottleneck: ${state.bottleneck} (${why(state)})`;
    b.className = "bottleneck-line found";
  } else {
    b.textContent = state.outcome === "running" ? "bottleneck: none stands out yet" : "bottleneck: none stands out";
    b.className = "bottleneck-line";
  }
  const runErrors = $("#run-errors");
  runErrors.replaceChildren(...state.errors.map((e) => el("pre", { class: "error" }, e)));
  for (const s of state.streams) applyStream(s, state);
  state.links.forEach((lk, i) => applyLink(lk, i, state.capacity));
  if (selected) showDetail(selected);
}

// The report's sentence speaks of the whole run; while it goes on, the judgement is on its last seconds.
function why(state) {
  return state.window_s ? state.why.replaceAll("of the run", `of the last ${state.window_s} s`) : state.why;
}

function applyStream(s, state) {
  const isBottleneck = state.bottleneck === s.name;
  const tr = document.querySelector(`#streams tr[data-stream="${CSS.escape(s.name)}"]`);
  if (tr) {
    const name = tr.querySelector(".name");
    name.textContent = s.workers > 1 ? `${s.name} ×${s.workers}` : s.name;
    if (isBottleneck) name.appendChild(el("span", { class: "badge" }, "bottleneck"));
    tr.classList.toggle("bottleneck", isBottleneck);
    tr.classList.toggle("failed", s.status === "failed");
    const st = tr.querySelector(".status");
    st.textContent = s.status;
    st.className = `status status-${s.status}`;
    tr.querySelector(".in").textContent = fmt(s.total_in);
    tr.querySelector(".out").textContent = fmt(s.total_out);
    tr.querySelector(".rate").textContent = state.outcome === "running" ? rate(s.rate) : `${rate(s.avg_rate)} avg`;
    tr.querySelector(".hist polyline").setAttribute("points", sparkPoints(s.history));
    tr.querySelector(".busy").textContent = pct(s.busy);
    tr.querySelector(".blocked").textContent = pct(s.blocked);
    tr.querySelector(".starved").textContent = pct(s.starved);
    tr.querySelector(".restarts").textContent = s.restarts;
  }
  const g = nodeOf[s.name];
  if (g) {
    for (const c of ["waiting", "running", "done", "failed", "stopped"]) g.classList.toggle(c, s.status === c);
    g.classList.toggle("bottleneck", isBottleneck);
    const shown = state.outcome === "running" ? s.rate : s.avg_rate;
    g.querySelector("text.rate").textContent = `${rate(shown)}/s${state.outcome === "running" ? "" : " avg"}`;
    const mark = g.querySelector("text.mark");
    if (mark) mark.textContent = isBottleneck ? "bottleneck" : s.status === "failed" ? "failed" : "";
  }
}

function applyLink(lk, i, capacity) {
  const g = edgeEls[i];
  if (!g) return;
  const color = fillColor(lk.fill);
  for (const shape of g.querySelectorAll("path, polygon")) {
    shape.style.stroke = color;
    if (shape.tagName === "polygon") shape.style.fill = color;
  }
  const t = g.querySelector("text");
  if (t) t.textContent = `${fmt(lk.items)} · ${lk.queued}/${capacity}`;
  g.setAttribute("data-fill", lk.fill.toFixed(2));
}

// -- one stream's figures ------------------------------------------------------------------

function select(name) {
  selected = name;
  document.querySelectorAll(".selected").forEach((e) => e.classList.remove("selected"));
  const tr = document.querySelector(`#streams tr[data-stream="${CSS.escape(name)}"]`);
  if (tr) tr.classList.add("selected");
  if (nodeOf[name]) nodeOf[name].classList.add("selected");
  showDetail(name);
}

function showDetail(name) {
  const box = $("#detail");
  const s = latest && latest.streams.find((x) => x.name === name);
  if (!s) return;
  const ports = (d) => Object.entries(d).map(([k, v]) => `${k}=${fmt(v)}`).join(" ") || "–";
  const rows = [
    ["status", s.status], ["copies", s.workers], ["restarts", s.restarts],
    ["items in", ports(s.items_in)], ["items out", ports(s.items_out)],
    ["items/s now", rate(s.rate)], ["items/s average", rate(s.avg_rate)],
    ["busy", `${s.busy_s.toFixed(3)} s (${pct(s.busy)})`],
    ["blocked pushing", `${s.blocked_s.toFixed(3)} s (${pct(s.blocked)})`],
    ["starved popping", `${s.starved_s.toFixed(3)} s (${pct(s.starved)})`],
    ["lifetime", `${s.elapsed_s.toFixed(2)} s`],
  ];
  const dl = el("dl");
  for (const [k, v] of rows) { dl.appendChild(el("dt", {}, k)); dl.appendChild(el("dd", {}, String(v))); }
  const parts = [el("h2", {}, s.name), dl];
  if (latest.bottleneck === s.name) parts.push(el("p", { class: "bottleneck-line found" }, `The bottleneck: ${why(latest)}`));
  if (s.error) parts.push(el("h2", {}, "error"), el("pre", { class: "error" }, s.error));
  box.replaceChildren(...parts);
}

start().catch((e) => {
  $("#outcome").textContent = `error: ${e}`;
  $("#outcome").className = "outcome failed";
});

/* The gradient playground: build a lab config, train it on the server, watch per-layer gradients live. */
"use strict";

const GROUPS = [
  ["Data", ["dataset", "seq_len"]],
  ["Network", ["model", "depth", "width", "activation", "init", "init_std", "norm", "residual", "dropout"]],
  ["Training", ["optimizer", "lr", "batch_size", "steps", "clip_norm", "seed"]],
];
const COLORS = { A: "#2f6fdf", B: "#e07b39" };
const MAX_CURVES = 6;
const $ = (id) => document.getElementById(id);

let OPTIONS = null;
const runs = { A: null, B: null };   // per slot: {id, cfg, source, layers, steps, stats{}, loss[], lossSteps[], sat, prediction, state}
let bDiff = null;                     // run B's setup as its differences from A's (from a preset, the URL or Overlay)
let extras = {};                      // fields of the setup that have no control here (a preset's n_train, …)
let charts = {}, drawPending = false;
let notice = "";                      // the last refusal of the server (e.g. a 422), shown under the runs

// ---- the controls and the URL ---------------------------------------------------------------------------------
function defaults(model) {
  const d = {};
  for (const [name, f] of Object.entries(OPTIONS.fields)) d[name] = f.default;
  if (model && model !== "mlp") Object.assign(d, { model, activation: "tanh", init: "xavier_uniform" });
  return d;
}
const CONTROLLED = () => new Set(GROUPS.flatMap(([, names]) => names));

function buildControls() {
  const form = $("controls");
  for (const [group, names] of GROUPS) {
    const g = document.createElement("div"); g.className = "group"; g.textContent = group; form.appendChild(g);
    for (const name of names) {
      const f = OPTIONS.fields[name];
      if (!f) continue;
      const label = document.createElement("label");
      label.title = f.description || "";
      label.append(name.replace(/_/g, " "));
      let input;
      if (f.type === "bool") {
        input = document.createElement("input"); input.type = "checkbox"; label.className = "check";
      } else if (f.choices) {
        input = document.createElement("select");
        for (const c of f.choices) input.add(new Option(c === null ? "(default)" : c, c === null ? "" : c));
      } else {
        input = document.createElement("input"); input.type = "number";
        input.step = f.type === "int" ? "1" : "any";
        if (f.type === "int") input.min = name === "seed" ? "0" : "1";
        if (f.max) input.max = String(f.max);
        if (f.default === null) input.placeholder = "off";
      }
      input.name = name; input.id = "f-" + name;
      input.addEventListener("change", () => {
        if (name === "model") modelDefaults(input.value);
        syncUrl(); updateVisibility();
      });
      label.appendChild(input);
      form.appendChild(label);
    }
  }
}

// lab.Config's defaults that depend on the model: tanh and Xavier for recurrent nets, ReLU and He for MLPs
function modelDefaults(model) {
  const recurrent = model !== "mlp";
  $("f-activation").value = recurrent ? "tanh" : "relu";
  $("f-init").value = recurrent ? "xavier_uniform" : "he_normal";
}

function readControls() {
  const cfg = { ...extras };
  for (const [, names] of GROUPS) for (const name of names) {
    const el = $("f-" + name), f = OPTIONS.fields[name];
    if (!el || el.closest("label").hidden) continue;
    if (f.type === "bool") cfg[name] = el.checked;
    else if (f.choices) { if (el.value !== "") cfg[name] = el.value; }
    else if (el.value !== "") cfg[name] = f.type === "int" ? parseInt(el.value, 10) : parseFloat(el.value);
  }
  return cfg;
}

function writeControls(cfg) {
  const d = defaults(cfg.model), controlled = CONTROLLED();
  extras = Object.fromEntries(Object.entries(cfg).filter(([k]) => !controlled.has(k) && OPTIONS.fields[k]));
  for (const [, names] of GROUPS) for (const name of names) {
    const el = $("f-" + name), f = OPTIONS.fields[name];
    if (!el) continue;
    const v = name in cfg ? cfg[name] : d[name];
    if (f.type === "bool") el.checked = !!v; else el.value = v === null || v === undefined ? "" : v;
  }
  updateVisibility();
}

function updateVisibility() {
  const seq = ["adding", "temporal_order", "copy_memory"].includes($("f-dataset").value);
  $("f-seq_len").closest("label").hidden = !seq;
  const mlp = $("f-model").value === "mlp";
  for (const n of ["norm", "residual"]) $("f-" + n).closest("label").hidden = !mlp;
  $("f-init_std").closest("label").hidden = !["normal", "uniform"].includes($("f-init").value);
}

// The setup in the URL: run A's fields that differ from the defaults; run B as b=key:value,… (its differences).
function diff(cfg, base) {
  return Object.entries(cfg).filter(([k, v]) => base[k] !== v && !(base[k] === undefined && v === null));
}
function syncUrl() {
  const a = readControls(), u = new URL(location.origin + location.pathname);
  for (const [k, v] of diff(a, defaults())) u.searchParams.set(k, v);
  if (bDiff) u.searchParams.set("b", Object.entries(bDiff).map(([k, v]) => `${k}:${v}`).join(",") || "same");
  history.replaceState(null, "", u);
  $("drop-b").disabled = !bDiff;
  $("b-setup").textContent = bDiff ? "Start trains run A and run B (" + (Object.entries(bDiff).map(([k, v]) => `${k} = ${v}`).join(", ") || "the same setup") + ")." : "";
}
function parseValue(name, text) {
  const f = OPTIONS.fields[name];
  if (!f) return text;
  if (f.type === "bool") return text === "true" || text === "1";
  if (f.type === "int") return parseInt(text, 10);
  if (f.type === "float") return parseFloat(text);
  return text;
}
function fromUrl() {
  const p = new URLSearchParams(location.search), a = {};
  for (const [k, v] of p) if (k !== "b" && OPTIONS.fields[k]) a[k] = parseValue(k, v);
  writeControls(a);
  bDiff = null;
  if (p.has("b")) {
    bDiff = {};
    for (const kv of p.get("b").split(",")) {
      const i = kv.indexOf(":");
      if (i > 0 && OPTIONS.fields[kv.slice(0, i)]) bDiff[kv.slice(0, i)] = parseValue(kv.slice(0, i), kv.slice(i + 1));
    }
  }
  syncUrl();
}

// Start: run A from the controls and, when the setup has a run B, run B as A with B's differences.
// A Stop pressed before B has started (A is already running) keeps B from starting.
let stops = 0;
async function startSetup() {
  const a = readControls(), before = stops;
  await startRun("A", a);
  if (bDiff && runs.A && stops === before) await startRun("B", { ...a, ...bDiff });
}

// ---- presets ----------------------------------------------------------------------------------------------------
function buildPresets() {
  for (const p of OPTIONS.presets) {
    const b = document.createElement("button");
    b.textContent = `${p.title} (${p.seed})`; b.dataset.name = p.name;
    b.addEventListener("click", () => {
      document.querySelectorAll(".presets button").forEach((x) => x.classList.toggle("active", x === b));
      $("preset-text").textContent = p.text;
      writeControls(p.a);
      bDiff = p.b ? Object.fromEntries(diff(p.b, p.a)) : null;
      syncUrl();
      startSetup();
    });
    $("presets").appendChild(b);
  }
}

// ---- runs and streams -------------------------------------------------------------------------------------------
function setStatus(text) {
  notice = text;
  schedule();
}

// Stop the slot's training; ``detach`` also closes its stream (when a new run replaces it), otherwise the
// stream stays open to receive the run's end.
const starting = {};  // slot -> "starting" while its run is being created; "stop" when Stop came meanwhile

function stopSlot(slot, detach) {
  if (starting[slot]) starting[slot] = "stop";  // the run has no id yet: stopped as soon as it has one
  const r = runs[slot];
  if (!r) return;
  if (detach && r.source) r.source.close();
  if (r.state === "running" || r.state === "queued")
    fetch("/api/playground/" + r.id, { method: "DELETE", keepalive: true }).catch(() => {});
}

async function startRun(slot, cfg) {
  if (slot === "A") { stopSlot("A", true); stopSlot("B", true); runs.B = null; }
  else stopSlot("B", true);
  let res;
  let stopAtOnce = false;
  starting[slot] = "starting";
  try {
    res = await GW.api("/api/playground", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(cfg) });
  } catch (e) {
    setStatus(`run ${slot} refused: ${e.message}`);
    return;
  } finally {
    stopAtOnce = starting[slot] === "stop";
    delete starting[slot];
  }
  notice = "";
  const r = runs[slot] = { id: res.id, cfg: res.config, sent: cfg, layers: [], steps: [], stats: {}, loss: [], lossSteps: [],
    sat: null, prediction: null, state: "queued", events: 0 };
  const es = r.source = new EventSource(`/api/playground/${res.id}/events`);
  es.addEventListener("prediction", (e) => { r.prediction = JSON.parse(e.data); schedule(); });
  es.addEventListener("step", (e) => {
    const ev = JSON.parse(e.data);
    r.state = "running"; r.events++; r.runId = ev.run_id;
    r.layers = ev.layers;
    r.steps.push(ev.step);
    for (const k of ["grad_norm", "relative_grad", "update_ratio"]) if (ev[k]) (r.stats[k] = r.stats[k] || []).push(ev[k]);
    if (ev.loss !== null) { r.loss.push(ev.loss); r.lossSteps.push(ev.step); }
    if (ev.saturation && ev.saturation.some((v) => v !== null)) r.sat = ev.saturation;
    if (ev.histogram) r.hist = ev.histogram;
    schedule();
  });
  es.addEventListener("end", (e) => {
    const ev = JSON.parse(e.data);
    r.state = ev.state; r.runId = ev.run_id; r.error = ev.error;
    if (slot === "A") $("diagnosis").textContent = ev.diagnosis || (ev.error ? "" : "—");
    es.close(); schedule();
  });
  es.onerror = () => { if (["completed", "failed", "stopped", "diverged"].includes(r.state)) es.close(); };
  if (stopAtOnce) stopSlot(slot);
  schedule();
}

// ---- drawing ----------------------------------------------------------------------------------------------------
function schedule() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => { drawPending = false; draw(); });
}

function statusLine() {
  const el = $("status");
  el.replaceChildren();
  for (const slot of ["A", "B"]) {
    const r = runs[slot];
    if (!r) continue;
    let s = "";
    if (r.steps.length) s += `, step ${r.steps[r.steps.length - 1]} of ${r.cfg.steps}`;
    if (r.loss.length && r.state !== "diverged") s += `, loss ${GW.fmt(r.loss[r.loss.length - 1])}`;
    if (r.error) s += ` — ${r.error}`;
    const line = document.createElement("div");
    line.id = "status-" + slot; line.dataset.state = r.state;
    line.append(`run ${slot}: `, GW.badge({ status: r.state }), s);
    if (r.runId) {
      const a = document.createElement("a");
      a.href = "/runs/" + encodeURIComponent(r.runId); a.textContent = "stored run"; a.target = "_blank";
      line.append(" (", a, ")");
    }
    el.appendChild(line);
  }
  if (notice) {
    const line = document.createElement("div");
    line.className = "error"; line.textContent = notice;
    el.appendChild(line);
  }
  const active = ["A", "B"].some((k) => runs[k] && ["queued", "running"].includes(runs[k].state));
  $("stop").disabled = !active;
  $("overlay").disabled = !runs.A;
  el.className = "status" + (["A", "B"].some((k) => runs[k] && ["failed", "diverged"].includes(runs[k].state)) ? " error" : "");
}

function lastRow(r, stat) { const v = r && r.stats[stat]; return v && v.length ? v[v.length - 1] : null; }
function firstRow(r, stat) { const v = r && r.stats[stat]; return v && v.length ? v[0] : null; }

// Runs A and B may have different layers (B adds batch norm, skip connections, …): both are drawn on A's layers,
// matched by the last part of the name ("block3.branch.hidden3" is "hidden3"); unmatched layers are left out.
const short = (name) => name.split(".").pop();
function align(layers, row, axis) {
  if (!layers || !row) return axis.map(() => null);
  const idx = new Map();
  layers.forEach((l, j) => { if (!idx.has(short(l))) idx.set(short(l), j); });
  return axis.map((l) => { const j = idx.get(short(l)); return j === undefined ? null : row[j]; });
}

function theory(r, axis) {
  // the prediction's shape, scaled to the measured output layer at the first step
  const p = r && r.prediction, g = firstRow(r, "grad_norm");
  if (!p || !p.available || !g) return null;
  const out = g[g.length - 1];
  return out > 0 ? align(p.layers, p.ratio_to_output.map((x) => x * out), axis) : null;
}

function ensure(name, make) {
  if (!charts[name] || charts[name].key !== make.key) {
    if (charts[name]) charts[name].destroy();
    charts[name] = make();
    charts[name].key = make.key;
  }
  return charts[name];
}

function draw() {
  statusLine();
  const A = runs.A, B = runs.B, stat = $("stat").value;
  const axis = (A || B) ? (A || B).layers : [], n = axis.length;
  const label = (u, vals) => vals.map((v) => (Number.isInteger(v) && axis[v - 1] ? short(axis[v - 1]) : ""));
  // 1. per-layer profile with the theory
  const xs = [...Array(n).keys()].map((j) => j + 1);
  const pos = (arr) => arr.map((v) => (v > 0 ? v : null));
  const on = (r, row) => pos(align(r && r.layers, row, axis));
  const orNull = (arr) => (arr ? pos(arr) : axis.map(() => null));
  const tA = stat === "grad_norm" ? theory(A, axis) : null, tB = stat === "grad_norm" ? theory(B, axis) : null;
  const pmake = () => GW.lineChart($("profile"), {
    xLabel: "layer (input → output)", yLabel: GW.statLabel(stat), yLog: true, legend: false, height: 260, xValues: label, xInt: true,
    series: [{ label: "A", stroke: COLORS.A, points: true, width: 2 }, { label: "B", stroke: COLORS.B, points: true, width: 2 },
      { label: "A at step 1", stroke: COLORS.A, fill: "#fff", points: true, size: 8, line: false },
      { label: "B at step 1", stroke: COLORS.B, fill: "#fff", points: true, size: 8, line: false },
      { label: "theory A", stroke: COLORS.A, dash: [6, 4], width: 1.4 }, { label: "theory B", stroke: COLORS.B, dash: [6, 4], width: 1.4 }],
  });
  pmake.key = "p" + axis.join() + stat;
  ensure("profile", pmake).setData([xs, on(A, lastRow(A, stat)), on(B, lastRow(B, stat)), on(A, firstRow(A, stat)),
    on(B, firstRow(B, stat)), orNull(tA), orNull(tB)]);
  $("profile-step").textContent = A && A.steps.length ? A.steps[A.steps.length - 1] : "–";
  $("profile").dataset.steps = A ? String(A.steps.length) : "0";
  const pa = A && A.prediction;
  $("theory-note").textContent = stat !== "grad_norm" ? "The theory line is drawn for the gradient norm." :
    pa ? (pa.available ? "Theory: variance propagation at init (seed 001), its per-layer shape scaled to run A's measured output layer at step 1."
      : "No theory line for run A: " + pa.reason) : "";
  // 2. curves over the steps
  const picked = [];
  for (let k = 0; k < Math.min(MAX_CURVES, n); k++) picked.push(Math.round(k * (n - 1) / Math.max(1, Math.min(MAX_CURVES, n) - 1)));
  const uniq = [...new Set(picked)];
  const stepsAll = [...new Set([...(A ? A.steps : []), ...(B ? B.steps : [])])].sort((a, b) => a - b);
  const series = [], data = [stepsAll];
  for (const [slot, r] of [["A", A], ["B", B]]) {
    if (!r) continue;
    const at = new Map(r.steps.map((st, i) => [st, i]));
    const vals = r.stats[stat] || [];
    const cols = align(r.layers, r.layers.map((_, j) => j), axis);
    for (const j of uniq) {
      const c = cols[j];
      if (c === null || c === undefined) continue;
      series.push({ label: `${slot} ${axis[j]}`, stroke: GW.layerColor(j, n), dash: slot === "B" ? [5, 4] : undefined });
      data.push(stepsAll.map((st) => { const i = at.get(st); const v = i === undefined ? null : vals[i] && vals[i][c]; return v > 0 ? v : null; }));
    }
  }
  const cmake = () => GW.lineChart($("curves"), { xLabel: "step", yLabel: GW.statLabel(stat), yLog: true, series, height: 260, legend: false });
  cmake.key = series.map((s) => s.label).join() + stat;
  ensure("curves", cmake).setData(data);
  // 3. loss
  const lossSteps = [...new Set([...(A ? A.lossSteps : []), ...(B ? B.lossSteps : [])])].sort((a, b) => a - b);
  const lossOf = (r) => { if (!r) return lossSteps.map(() => null); const m = new Map(r.lossSteps.map((s, i) => [s, r.loss[i]])); return lossSteps.map((s) => m.has(s) ? m.get(s) : null); };
  const lmake = () => GW.lineChart($("loss"), { xLabel: "step", yLabel: "loss", series: [{ label: "A", stroke: COLORS.A }, { label: "B", stroke: COLORS.B }] });
  lmake.key = "loss";
  ensure("loss", lmake).setData([lossSteps, lossOf(A), lossOf(B)]);
  // 4. saturation
  const smake = () => GW.lineChart($("saturation"), {
    xLabel: "layer (input → output)", yLabel: "share", legend: false, xInt: true, xValues: label,
    series: [{ label: "A", stroke: COLORS.A, points: true }, { label: "B", stroke: COLORS.B, points: true }] });
  smake.key = "sat" + axis.join();
  ensure("saturation", smake).setData([xs, align(A && A.layers, A && A.sat, axis), align(B && B.layers, B && B.sat, axis)]);
  // 5. log10|g| histograms of run A's picked layers (share of the layer's entries per 0.25-decade bin)
  if (A && A.hist) {
    const h = A.hist, centers = h.edges.slice(1).map((e, k) => (e + h.edges[k]) / 2);
    const hs = uniq.filter((j) => j < A.layers.length);
    const hmake = () => GW.lineChart($("histogram"), {
      xLabel: "log10 |∂L/∂θ|", yLabel: "share of entries", height: 220,
      series: hs.map((j) => ({ label: A.layers[j], stroke: GW.layerColor(j, A.layers.length) })) });
    hmake.key = "h" + hs.map((j) => A.layers[j]).join();
    ensure("histogram", hmake).setData([centers].concat(hs.map((j) => {
      const c = h.counts[j], total = c.reduce((a, b) => a + (b || 0), 0);
      return c.map((v) => (total > 0 ? v / total : null));
    })));
    $("hist-note").textContent = `(run A, at the watch's step ${h.watch_step}, counted from 0)`;
  }
  // 6. heatmap of run A
  if (A && A.steps.length) {
    GW.drawHeatmap($("heatmap"), A.layers, A.steps, A.stats[stat] || []);
    $("hm-note").textContent = `(${GW.statLabel(stat)}, log colour scale)`;
  }
}

// ---- wiring -----------------------------------------------------------------------------------------------------
async function main() {
  OPTIONS = await GW.api("/api/playground/options");
  buildControls();
  buildPresets();
  fromUrl();
  $("start").addEventListener("click", startSetup);
  $("overlay").addEventListener("click", () => {
    const cfg = readControls();
    const a = runs.A ? runs.A.sent : cfg;
    bDiff = Object.fromEntries(diff(cfg, a));
    writeControls(a);  // the controls show run A's setup; B is its differences (listed under the buttons)
    syncUrl();
    startRun("B", cfg);
  });
  $("drop-b").addEventListener("click", () => { bDiff = null; syncUrl(); });
  $("stop").addEventListener("click", () => { stops++; stopSlot("A"); stopSlot("B"); });
  $("stat").addEventListener("change", schedule);
  window.addEventListener("beforeunload", () => { stopSlot("A", true); stopSlot("B", true); });
  draw();
}
window.GWPlayground = { runs };
main().catch((e) => { $("status").textContent = e.message; $("status").className = "status error"; });

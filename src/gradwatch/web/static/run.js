/* One stored run: heatmap, per-layer curves and profile, metrics, diagnosis; refreshed while it is running. */
"use strict";

const RUN_ID = decodeURIComponent(location.pathname.split("/").pop());
const POLL_MS = 2000;
const MAX_CURVES = 10;
const SHOWN_KEYS = ["model", "dataset", "depth", "width", "sizes", "activation", "init", "init_std", "norm", "residual",
  "dropout", "optimizer", "lr", "batch_size", "epochs", "steps", "clip_norm", "seq_len", "seed"];
const $ = (id) => document.getElementById(id);
let run = null, charts = {};

function pickLayers(n) {
  if (n <= MAX_CURVES) return [...Array(n).keys()];
  const idx = new Set();
  for (let k = 0; k < MAX_CURVES; k++) idx.add(Math.round(k * (n - 1) / (MAX_CURVES - 1)));
  return [...idx];
}

function column(values, j) { return values.map((row) => row[j]); }

function renderConfig() {
  const c = run.config, kv = $("config");
  kv.replaceChildren();
  const SEQUENCES = ["adding", "temporal_order", "copy_memory"];
  const irrelevant = { init_std: !["normal", "uniform"].includes(c.init), seq_len: !SEQUENCES.includes(c.dataset),
    epochs: c.steps && c.epochs >= 1e6, norm: c.model !== "mlp", residual: c.model !== "mlp" };
  for (const k of SHOWN_KEYS) {
    if (c[k] === null || c[k] === undefined || irrelevant[k]) continue;
    const b = document.createElement("b"); b.textContent = k;
    const v = document.createElement("span"); v.textContent = Array.isArray(c[k]) ? c[k].join(", ") : String(c[k]);
    kv.append(b, v);
  }
  const b = document.createElement("b"); b.textContent = "status";
  const v = document.createElement("span"); v.appendChild(GW.badge(run));
  kv.append(b, v);
  $("badge").replaceChildren(GW.badge(run));
}

function renderHistory() {
  const h = run.history, stat = $("stat").value || "grad_norm";
  const values = h.stats[stat] || [];
  $("hm-stat").textContent = `(${stat}, log colour scale; ${h.steps.length} of the recorded steps shown)`;
  document.querySelectorAll(".stat-label").forEach((el) => { el.textContent = GW.statLabel(stat); });
  GW.drawHeatmap($("heatmap"), h.layers, h.steps, values);
  const picked = pickLayers(h.layers.length);
  const data = [h.steps].concat(picked.map((j) => GW.positive(column(values, j))));
  if (!charts.curves || charts.curvesKey !== picked.join() + stat) {
    if (charts.curves) charts.curves.destroy();
    charts.curves = GW.lineChart($("curves"), {
      xLabel: "step", yLabel: stat, yLog: true, data,
      series: picked.map((j) => ({ label: h.layers[j], stroke: GW.layerColor(j, h.layers.length) })),
    });
    charts.curvesKey = picked.join() + stat;
  } else charts.curves.setData(data);
  const idx = h.layers.map((_, j) => j + 1);
  const first = values.length ? GW.positive(values[0]) : [], last = values.length ? GW.positive(values[values.length - 1]) : [];
  const pdata = [idx, first, last];
  if (!charts.profile || charts.profileKey !== stat) {
    if (charts.profile) charts.profile.destroy();
    charts.profileKey = stat;
    charts.profile = GW.lineChart($("profile"), {
      xLabel: "layer (input → output)", yLabel: stat, yLog: true, data: pdata, xInt: true,
      xValues: (u, vals) => vals.map((v) => (Number.isInteger(v) && h.layers[v - 1] ? h.layers[v - 1] : "")),
      series: [{ label: `step ${h.steps[0] ?? ""}`, stroke: "#2f6fdf", points: true },
        { label: `step ${h.steps[h.steps.length - 1] ?? ""}`, stroke: "#e07b39", points: true }],
    });
  } else charts.profile.setData(pdata);
}

function renderMetrics() {
  const m = run.metrics;
  const x = m.map((r) => r.epoch);
  const keys = ["loss", "test_loss", "accuracy", "test_accuracy"].filter((k) => m.some((r) => r[k] !== undefined));
  const data = [x].concat(keys.map((k) => m.map((r) => (r[k] === undefined ? null : r[k]))));
  const colors = { loss: "#2f6fdf", test_loss: "#7aa4f0", accuracy: "#2e8b57", test_accuracy: "#8cc9a4" };
  if (charts.metrics) charts.metrics.destroy();
  charts.metrics = GW.lineChart($("metrics"), {
    xLabel: "epoch", yLabel: "", data, xInt: true, series: keys.map((k) => ({ label: k, stroke: colors[k], points: true })),
  });
  const times = Object.keys(run.time_grads || {});
  $("time-panel").hidden = times.length === 0;
  if (times.length) {
    const a = run.time_grads[times[0]], b = run.time_grads[times[times.length - 1]];
    if (charts.times) charts.times.destroy();
    charts.times = GW.lineChart($("times"), {
      xLabel: "time step t", yLabel: "‖∂L/∂h_t‖", yLog: true, data: [a.map((_, t) => t + 1), GW.positive(a), GW.positive(b)],
      series: [{ label: `epoch ${times[0]}`, stroke: "#2f6fdf" }, { label: `epoch ${times[times.length - 1]}`, stroke: "#e07b39" }],
    });
  }
}

async function load() {
  try {
    run = await GW.api("/api/runs/" + encodeURIComponent(RUN_ID) + "?max_points=400");
  } catch (e) {
    $("title").textContent = "run " + RUN_ID;
    $("error").hidden = false; $("error").textContent = e.message;
    return;
  }
  document.title = "gradwatch — " + run.id;
  $("title").textContent = `run ${run.id}`;
  const stats = Object.keys(run.history.stats);
  if ($("stat").options.length !== stats.length) {
    const keep = $("stat").value || "grad_norm";
    $("stat").replaceChildren(...stats.map((s) => new Option(s, s, false, s === keep)));
  }
  renderConfig();
  $("diagnosis").textContent = run.diagnosis || (run.status === "running" ? "(diagnosed when the run ends)" : "—");
  if (run.error) { $("error").hidden = false; $("error").textContent = run.error; }
  renderHistory();
  renderMetrics();
  const live = run.status === "running";
  $("live").textContent = live ? "● live: refreshing every 2 s" : "";
  if (live) setTimeout(load, POLL_MS);
}

$("stat").addEventListener("change", renderHistory);
$("delete").addEventListener("click", async () => {
  if (!run || !confirm(`Delete run ${run.id} from the store?`)) return;
  try { await GW.deleteRun(run.id); location.href = "/"; } catch (e) { $("error").hidden = false; $("error").textContent = e.message; }
});
load();

/* Two stored runs side by side: their differences, losses and per-layer profiles (/compare?a=ID&b=ID). */
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = { a: "#2f6fdf", b: "#e07b39" };
const SUMMARY = ["loss", "test_loss", "accuracy", "test_accuracy", "step"];
let runs = {}, charts = {};

function diffRows() {
  const A = runs.a, B = runs.b, rows = [["outcome", A.outcome, B.outcome]];
  const keys = [...new Set([...Object.keys(A.config), ...Object.keys(B.config)])].sort();
  for (const k of keys) {
    const a = JSON.stringify(A.config[k]), b = JSON.stringify(B.config[k]);
    if (a !== b) rows.push([k, A.config[k], B.config[k]]);
  }
  for (const k of SUMMARY) rows.push([k, A.summary[k], B.summary[k]]);
  $("diff").replaceChildren(...rows.map(([k, a, b]) => {
    const tr = document.createElement("tr");
    for (const v of [k, a, b]) {
      const td = document.createElement("td");
      td.textContent = typeof v === "number" ? GW.fmt(v) : (v === undefined || v === null ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)));
      tr.appendChild(td);
    }
    return tr;
  }));
}

function drawMetrics() {
  const ea = runs.a.metrics.map((m) => m.epoch), eb = runs.b.metrics.map((m) => m.epoch);
  const x = [...new Set([...ea, ...eb])].sort((p, q) => p - q);
  const at = (r) => { const m = new Map(r.metrics.map((e) => [e.epoch, e.loss])); return x.map((e) => (m.has(e) ? m.get(e) : null)); };
  if (charts.metrics) charts.metrics.destroy();
  charts.metrics = GW.lineChart($("metrics"), { xLabel: "epoch", yLabel: "loss", xInt: true, data: [x, at(runs.a), at(runs.b)],
    series: [{ label: "A", stroke: COLORS.a, points: true }, { label: "B", stroke: COLORS.b, points: true }] });
}

function drawProfile() {
  const stat = $("stat").value;
  document.querySelectorAll(".stat-label").forEach((el) => { el.textContent = GW.statLabel(stat); });
  // both on A's layers, matched by name (B's extra layers left out); B alone when A lacks the statistic
  const layers = runs.a.history.layers.length ? runs.a.history.layers : runs.b.history.layers;
  const last = (r) => {
    const v = r.history.stats[stat];
    if (!v || !v.length) return layers.map(() => null);
    const row = v[v.length - 1], idx = new Map(r.history.layers.map((l, j) => [l, j]));
    return GW.positive(layers.map((l) => (idx.has(l) ? row[idx.get(l)] : null)));
  };
  if (charts.profile) charts.profile.destroy();
  charts.profile = GW.lineChart($("profile"), {
    xLabel: "layer (input → output)", yLabel: GW.statLabel(stat), yLog: true, xInt: true, height: 280,
    xValues: (u, vals) => vals.map((v) => (Number.isInteger(v) && layers[v - 1] ? layers[v - 1] : "")),
    data: [layers.map((_, j) => j + 1), last(runs.a), last(runs.b)],
    series: [{ label: "A", stroke: COLORS.a, points: true, width: 2 }, { label: "B", stroke: COLORS.b, points: true, width: 2 }],
  });
  $("profile").dataset.stat = stat;
}

async function main() {
  const p = new URLSearchParams(location.search);
  try {
    [runs.a, runs.b] = await Promise.all(["a", "b"].map((k) => GW.api("/api/runs/" + encodeURIComponent(p.get(k) || "") + "?max_points=50")));
  } catch (e) {
    $("error").hidden = false; $("error").textContent = e.message;
    return;
  }
  for (const k of ["a", "b"]) {
    $("name-" + k).textContent = runs[k].id; $("name-" + k).href = "/runs/" + encodeURIComponent(runs[k].id);
    $("badge-" + k).replaceChildren(GW.badge(runs[k]));
  }
  const stats = [...new Set([...Object.keys(runs.a.history.stats), ...Object.keys(runs.b.history.stats)])];
  $("stat").replaceChildren(...stats.map((s) => new Option(GW.statLabel(s), s, false, s === "grad_norm")));
  $("stat").addEventListener("change", drawProfile);
  diffRows();
  drawMetrics();
  drawProfile();
  document.body.dataset.ready = "1";
}
main();

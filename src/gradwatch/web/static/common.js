/* Shared helpers of the gradwatch pages: API calls, colours, the layer × step heatmap, uPlot line charts. */
"use strict";

const GW = {};

GW.api = async function (path, options) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const d = body.detail || {};
    throw new Error(d.message || (typeof body.detail === "string" ? body.detail : res.statusText));
  }
  return body;
};

GW.fmt = function (v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(digits === undefined ? 1 : digits);
  return Number(v.toPrecision(digits === undefined ? 3 : digits)).toString();
};

GW.time = function (t) {
  if (!t) return "";
  const d = new Date(t * 1000);
  return d.toISOString().slice(5, 16).replace("T", " ");
};

// axis labels: powers of ten as 1e-4, others as GW.fmt
GW.tick = function (v) {
  if (v === null || v === undefined) return "";
  const l = Math.log10(Math.abs(v));
  if (v !== 0 && Math.abs(l - Math.round(l)) < 1e-9 && (Math.abs(v) < 1e-2 || Math.abs(v) >= 1e4)) return "1e" + Math.round(l);
  return GW.fmt(v, 2);
};

// Viridis, 9 stops: dark blue (small) to yellow (large).
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129],
  [92, 200, 99], [170, 220, 50], [253, 231, 37]];
GW.viridis = function (t) {
  t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k])));
};
GW.rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
// Layer colours: the input side dark blue, the output side yellow-green (as in the heatmap).
GW.layerColor = (i, n) => GW.rgb(GW.viridis(n <= 1 ? 0.5 : 0.05 + 0.85 * i / (n - 1)));

/* Heatmap of log10 values[step][layer]: the output layer on top, the input layer at the bottom. */
GW.drawHeatmap = function (canvas, layers, steps, values, opts) {
  opts = opts || {};
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 800, rowH = Math.max(4, Math.min(26, 320 / Math.max(1, layers.length)));
  const left = opts.left || 96, right = 70, top = 8, bottom = 34;
  const cssH = top + bottom + rowH * layers.length;
  canvas.style.height = cssH + "px";
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  ctx.font = "11px system-ui, sans-serif";
  const plotW = cssW - left - right, n = steps.length;
  let lo = Infinity, hi = -Infinity;
  for (const row of values) for (const v of row) if (v > 0) { const l = Math.log10(v); lo = Math.min(lo, l); hi = Math.max(hi, l); }
  if (!n || !Number.isFinite(lo)) {
    ctx.fillStyle = "#6b7385"; ctx.fillText("no gradient statistics recorded yet", left, top + 14);
    return;
  }
  if (hi - lo < 1e-9) { hi = lo + 1; }
  const colW = plotW / n;
  for (let s = 0; s < n; s++) {
    for (let j = 0; j < layers.length; j++) {
      const v = values[s][j];
      const y = top + (layers.length - 1 - j) * rowH;
      ctx.fillStyle = v > 0 ? GW.rgb(GW.viridis((Math.log10(v) - lo) / (hi - lo))) : (v === 0 ? "#000" : "#ddd");
      ctx.fillRect(left + s * colW, y, Math.ceil(colW) + 0.5, rowH);
    }
  }
  ctx.fillStyle = "#1d2330"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
  const every = Math.ceil(11 / rowH);
  layers.forEach((name, j) => {
    if (j % every === 0 || j === layers.length - 1)
      ctx.fillText(name.length > 14 ? "…" + name.slice(-13) : name, left - 6, top + (layers.length - 1 - j + 0.5) * rowH);
  });
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  const ticks = Math.min(6, n);
  for (let k = 0; k < ticks; k++) {
    const s = Math.round(k * (n - 1) / Math.max(1, ticks - 1));
    ctx.fillText(String(steps[s]), left + (s + 0.5) * colW, top + rowH * layers.length + 4);
  }
  ctx.fillText(opts.xLabel || "step", left + plotW / 2, top + rowH * layers.length + 18);
  // colour bar
  const barX = cssW - right + 14, barH = rowH * layers.length;
  for (let k = 0; k < barH; k++) { ctx.fillStyle = GW.rgb(GW.viridis(1 - k / barH)); ctx.fillRect(barX, top + k, 12, 1.5); }
  ctx.textAlign = "left"; ctx.textBaseline = "middle"; ctx.fillStyle = "#1d2330";
  ctx.fillText("1e" + hi.toFixed(1), barX + 15, top + 5);
  ctx.fillText("1e" + lo.toFixed(1), barX + 15, top + barH - 5);
  canvas.dataset.drawn = String(n);
};

/* A uPlot line chart. series: [{label, stroke, dash, width, points}]. */
GW.lineChart = function (el, opts) {
  const width = () => Math.max(300, el.clientWidth - 4);
  const chart = new uPlot({
    width: width(), height: opts.height || 240,
    title: opts.title,
    scales: { x: { time: false, distr: opts.xLog ? 3 : 1 }, y: { distr: opts.yLog ? 3 : 1, auto: true } },
    axes: [
      { label: opts.xLabel, stroke: "#6b7385", grid: { stroke: "#eef0f4" }, values: opts.xValues,
        incrs: opts.xInt ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] : undefined },
      { label: opts.yLabel, stroke: "#6b7385", grid: { stroke: "#eef0f4" }, size: 62,
        values: (u, vals) => vals.map(GW.tick) },
    ],
    legend: { show: opts.legend !== false, live: false },
    cursor: { drag: { x: false, y: false } },
    series: [{ label: opts.xLabel || "x" }].concat(opts.series.map((s) => ({
      label: s.label, stroke: s.stroke, width: s.width || 1.6, dash: s.dash, spanGaps: true,
      paths: s.line === false ? () => null : undefined,
      points: { show: !!s.points, size: s.size || 5, fill: s.fill || s.stroke },
    }))),
  }, opts.data || [[]].concat(opts.series.map(() => [])), el);
  window.addEventListener("resize", () => chart.setSize({ width: width(), height: chart.height }));
  return chart;
};

// log scales cannot show 0 or negative numbers: those become gaps
GW.positive = (arr) => arr.map((v) => (v > 0 ? v : null));

// What each recorded statistic is, for titles and axis labels (an unknown name is shown as it is).
GW.STAT_LABELS = {
  grad_norm: "gradient norm ‖∂L/∂θ‖", relative_grad: "relative gradient ‖∂L/∂θ‖/‖θ‖",
  update_ratio: "update ratio ‖Δθ‖/‖θ‖", weight_norm: "weight norm ‖θ‖", grad_abs_mean: "mean |∂L/∂θ|",
  grad_abs_max: "max |∂L/∂θ|", grad_norm_preclip: "gradient norm before clipping", nonfinite: "non-finite gradient entries",
  weight_nonfinite: "non-finite weights", act_mean: "mean activation", act_std: "activation std",
  act_saturation: "saturated share", act_dead: "dead share", backward_gain: "backward gain",
};
GW.statLabel = (s) => GW.STAT_LABELS[s] || s;

// A run's shown status: its outcome (diverged when its loss blew up), else its stored status.
GW.badge = function (r) {
  const s = r.outcome || r.status || r.state || "";
  const b = document.createElement("span");
  b.className = "badge " + s.replace(/[^a-z]/g, "");
  b.textContent = s;
  return b;
};

// A DELETE of a stored run (the server checks that the request comes from its own pages).
GW.deleteRun = (id) => GW.api("/api/runs/" + encodeURIComponent(id), { method: "DELETE" });

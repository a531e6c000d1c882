/* The runs page: every stored run, filterable, refreshed every few seconds (runs training elsewhere appear). */
"use strict";

const REFRESH_MS = 4000;
const $ = (id) => document.getElementById(id);

function net(c) {
  const act = ["lstm", "gru"].includes(c.model) ? "" : " " + (c.activation || "");
  const shape = c.sizes ? `${c.sizes.length}×[${c.sizes.join(",")}]` : `${c.depth}×${c.width}`;
  const extras = [c.norm && c.norm !== "none" ? c.norm + " norm" : "", c.residual ? "residual" : ""].filter(Boolean);
  return shape + act + (extras.length ? " · " + extras.join(" · ") : "");
}

function row(r) {
  const c = r.config, s = r.summary || {};
  const tr = document.createElement("tr");
  const health = s.healthy === undefined ? "" : s.healthy === null ? "? no evidence" : (s.healthy ? "✓ healthy" : "⚠ findings");
  const cells = [
    [r.id], [`<span class="badge ${r.status}">${r.status}</span>`, true], [c.model], [c.dataset], [net(c)], [c.init],
    [`${c.optimizer} ${GW.fmt(c.lr)}`], [s.step, false, "num"], [GW.fmt(s.loss), false, "num"],
    [GW.fmt(s.test_accuracy), false, "num"], [health], [GW.time(r.started)],
  ];
  for (const [v, html, cls] of cells) {
    const td = document.createElement("td");
    if (html) td.innerHTML = v; else td.textContent = v === undefined || v === null ? "" : v;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  tr.title = s.diagnosis || "";
  tr.addEventListener("click", () => { location.href = "/runs/" + encodeURIComponent(r.id); });
  return tr;
}

async function refresh() {
  const params = new URLSearchParams();
  for (const k of ["q", "status", "model"]) if ($(k).value) params.set(k, $(k).value);
  try {
    const runs = await GW.api("/api/runs?" + params);
    $("rows").replaceChildren(...runs.map(row));
    $("count").textContent = `${runs.length} run${runs.length === 1 ? "" : "s"}`;
    $("empty").hidden = runs.length > 0 || params.toString() !== "";
  } catch (e) {
    $("count").textContent = "error: " + e.message;
  }
}

for (const k of ["q", "status", "model"]) {
  const p = new URLSearchParams(location.search).get(k);
  if (p) $(k).value = p;
  $(k).addEventListener("input", () => {
    const u = new URL(location.href);
    if ($(k).value) u.searchParams.set(k, $(k).value); else u.searchParams.delete(k);
    history.replaceState(null, "", u);
    refresh();
  });
}
refresh();
setInterval(refresh, REFRESH_MS);

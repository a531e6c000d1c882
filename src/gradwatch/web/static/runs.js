/* The runs page: every stored run, filterable, refreshed every few seconds (runs training elsewhere appear);
   tick two runs to compare them, ✕ deletes one. */
"use strict";

const REFRESH_MS = 4000;
const $ = (id) => document.getElementById(id);
const picked = new Set();   // ids ticked for comparison (at most 2: a third replaces the oldest)

function net(c) {
  if (c.kind === "watch") return `watched ${c.model || "model"}` + (c.name ? ` “${c.name}”` : "");
  if (c.depth === null || c.depth === undefined) return c.model || "";
  const act = ["lstm", "gru"].includes(c.model) ? "" : " " + (c.activation || "");
  const shape = c.sizes ? `${c.sizes.length}×[${c.sizes.join(",")}]` : `${c.depth}×${c.width}`;
  const extras = [c.norm && c.norm !== "none" ? c.norm + " norm" : "", c.residual ? "residual" : ""].filter(Boolean);
  return shape + act + (extras.length ? " · " + extras.join(" · ") : "");
}

function cell(tr, v, cls) {
  const td = document.createElement("td");
  if (v instanceof Node) td.appendChild(v); else td.textContent = v === undefined || v === null ? "" : v;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function row(r) {
  const c = r.config, s = r.summary || {};
  const tr = document.createElement("tr");
  tr.dataset.id = r.id; tr.dataset.outcome = r.outcome || r.status;
  const health = s.healthy === undefined ? "" : s.healthy === null ? "? no evidence" : (s.healthy ? "✓ healthy" : "⚠ findings");
  const box = document.createElement("input");
  box.type = "checkbox"; box.className = "pick"; box.checked = picked.has(r.id); box.title = "compare";
  box.addEventListener("click", (e) => { e.stopPropagation(); pick(r.id, box.checked); });
  cell(tr, box, "pick");
  cell(tr, r.id); cell(tr, GW.badge(r)); cell(tr, c.model); cell(tr, c.dataset); cell(tr, net(c)); cell(tr, c.init);
  cell(tr, c.optimizer ? `${c.optimizer} ${GW.fmt(c.lr)}` : ""); cell(tr, s.step, "num");
  cell(tr, GW.fmt(s.loss), "num"); cell(tr, GW.fmt(s.test_accuracy), "num"); cell(tr, health); cell(tr, GW.time(r.started));
  const del = document.createElement("button");
  del.className = "icon danger delete"; del.textContent = "✕"; del.title = "delete this run from the store";
  del.disabled = r.status === "running";
  del.addEventListener("click", async (e) => {
    e.stopPropagation();
    if (!confirm(`Delete run ${r.id} from the store?`)) return;
    try { await GW.deleteRun(r.id); picked.delete(r.id); refresh(); } catch (err) { $("count").textContent = "error: " + err.message; }
  });
  cell(tr, del);
  tr.title = s.diagnosis || r.error || "";
  tr.addEventListener("click", () => { location.href = "/runs/" + encodeURIComponent(r.id); });
  return tr;
}

function pick(id, on) {
  if (on) { picked.add(id); if (picked.size > 2) picked.delete(picked.values().next().value); } else picked.delete(id);
  document.querySelectorAll("#rows tr").forEach((tr) => { tr.querySelector("input.pick").checked = picked.has(tr.dataset.id); });
  $("compare").disabled = picked.size !== 2;
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
$("compare").addEventListener("click", () => {
  const [a, b] = [...picked];
  location.href = `/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
});
refresh();
setInterval(refresh, REFRESH_MS);

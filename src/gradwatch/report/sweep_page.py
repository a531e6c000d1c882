"""A sweep's outputs in a directory: ``sweep.json``, the plots as PNG and a self-contained ``sweep.html``."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from gradwatch.report.html import _page, img_tag, table_html


def sweep_figures(runs: list[dict[str, Any]], names: list[str], metric: str) -> dict[str, Any]:
    """The plots a sweep gets: lines over the first swept knob (one line per value of the second), and a heatmap
    over the first two numeric-or-not knobs; each for ``metric`` and the gradient ratio."""
    from gradwatch.report.sweep_plots import SweepHeatmap, SweepLines

    figs: dict[str, Any] = {}
    if not names or not runs:
        return figs
    from gradwatch.report.sweep_plots import METRIC_LABELS

    hue = names[1] if len(names) > 1 else None
    pooled = "mean over seeds" + "".join(f", {n}" for n in names[2:])  # knobs not on the axes are averaged
    for m in (metric, "grad_ratio"):
        if any(m in r["summary"] for r in runs):
            label = METRIC_LABELS.get(m, m)
            figs[f"lines-{m}"] = SweepLines(
                runs, names[0], m, hue=hue, title=f"{label} over {names[0]} ({pooled}; band ±1 sd over seeds)"
            )
            if len(names) > 1:
                figs[f"heatmap-{m}"] = SweepHeatmap(
                    runs, names[0], names[1], m, title=f"{label} over {names[0]} × {names[1]} ({pooled})"
                )
    return figs


def write_sweep_report(
    out: Path,
    payload: dict[str, Any],
    runs: list[dict[str, Any]],
    names: list[str],
    table: tuple[list[str], list[list[Any]]],
    metric: str,
) -> dict[str, Path]:
    """Write sweep.json, one PNG per plot and sweep.html into ``out``; returns {kind: path}."""
    from gradwatch.io import write_json

    out.mkdir(parents=True, exist_ok=True)
    images = {k: fig.save(out / f"sweep-{k}.png") for k, fig in sweep_figures(runs, names, metric).items()}
    paths: dict[str, Path] = {"json": write_json(out / "sweep.json", payload)}
    best = payload.get("best")
    parts = [
        "<h1>gradwatch sweep</h1>",
        f"<p>{payload['total']} runs ({len(payload['configs'])} configurations × seeds); "
        f"{payload['skipped']} already in the store, {payload['done']} run now, {payload['failed']} failed. "
        f"Swept: {html.escape(', '.join(names) or 'nothing')}.</p>",
    ]
    if best:
        parts.append(
            f"<p><b>Best configuration</b> by {html.escape(best['metric'])}: {html.escape(best['label'])}.</p>"
        )
    parts.append(table_html("per configuration: mean ± spread over seeds", *table))
    parts += [img_tag(p, k) for k, p in images.items()]
    page = out / "sweep.html"
    page.write_text(_page("gradwatch — sweep", "\n".join(parts)), encoding="utf-8")
    paths["html"] = page
    paths.update({f"png:{k}": p for k, p in images.items()})
    return paths

"""The report page of a watch: one self-contained HTML file (charts inlined as base64 PNG, no script, no
stylesheet or font to fetch), readable offline and for a 100-layer model.

Sections: the diagnosis (findings with their evidence and remedies), a layer × step heatmap of each recorded
statistic (log colour scale, input side at the bottom), every layer's gradient norm over the steps, the
log10|g| histograms, the backward-gain decomposition, and a table naming every layer with its latest values.
"""

from __future__ import annotations

import base64
import html
import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gradwatch import stat_names as sn
from gradwatch.probe.stats import SAMPLED_STATS
from gradwatch.report.html import _page, table_html
from gradwatch.report.plots import _pyplot
from gradwatch.report.watch_heatmap import LayerStepHeatmap, figure_height, layer_ticks
from gradwatch.report.watch_table import GRADIENT_COLUMNS, HOOK_COLUMNS

DPI = 90
HEATMAP_STATS = (
    sn.GRAD_NORM,
    sn.GRAD_ABS_MEAN,
    sn.GRAD_ABS_MAX,
    sn.WEIGHT_NORM,
    sn.UPDATE_RATIO,
    sn.GRAD_NORM_PRECLIP,
    sn.ACT_STD,
    sn.ACT_SATURATION,
    sn.ACT_DEAD,
    sn.BACKWARD_GAIN,
    sn.GAIN_ACTIVATION,
)
LINE_STATS = (sn.GRAD_NORM, sn.UPDATE_RATIO)
EVIDENCE_OPEN = 15  # evidence lists up to this long are shown open; longer ones start folded


def _png(figure) -> str:
    """The figure as an inline ``<img>`` (base64 PNG); the figure is closed."""
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=DPI)
    _pyplot().close(figure)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}">'


def _healthy() -> str:
    from gradwatch.diagnose import healthy_sentence

    text = healthy_sentence()
    return text[:1].upper() + text[1:]


def _diagnosis_html(diagnosis: Any) -> str:
    if diagnosis is None:
        return "<p>No diagnosis (nothing recorded).</p>"
    head = (
        f"<p class='ok'>{html.escape(_healthy())}.</p>"
        if diagnosis.healthy
        else f"<p class='no'>{html.escape(diagnosis.unmeasured)}</p>"
        if diagnosis.healthy is None
        else f"<p class='no'>{len(diagnosis.findings)} finding(s): {html.escape(', '.join(diagnosis.kinds()))}</p>"
    )
    parts = [head]
    for f in diagnosis.findings:
        parts.append(
            f"<h3>{html.escape(f.kind)} — from step {f.step}</h3>"
            f"<p><b>Layers:</b> {html.escape(', '.join(f.layers))}</p><p>{html.escape(f.summary)}</p>"
        )
        lines = f.evidence.get("lines", [])
        if lines:  # a native disclosure (no script): open when short, one click away for a 100-layer model
            opened = " open" if len(lines) <= EVIDENCE_OPEN else ""
            parts.append(
                f"<details{opened}><summary><b>Evidence</b> ({len(lines)} lines)</summary><ul>"
                + "".join(f"<li>{html.escape(l)}</li>" for l in lines)
                + "</ul></details>"
            )
        if f.remedies:
            parts.append(
                "<p><b>Remedies, most relevant first</b></p><ol>"
                + "".join(
                    f"<li><b>{html.escape(r.title)}</b> — {html.escape(r.detail)} <small>[{html.escape(r.source)}]"
                    "</small></li>"
                    for r in f.remedies
                )
                + "</ol>"
            )
    if diagnosis.not_checked:
        parts.append("<p><small>Not checked: " + html.escape("; ".join(diagnosis.not_checked)) + "</small></p>")
    return "\n".join(parts)


def _lines(history, stat: str):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from gradwatch.report.watch_plots import LayerStatOverTime

    plot = LayerStatOverTime(history, stat)
    figure = plot.drawn()
    if len(history.layers) > 12:  # no legend then: a colour bar from the input side to the output side
        figure.colorbar(
            ScalarMappable(Normalize(0, len(history.layers) - 1), "viridis"),
            ax=plot.ax,
            label="layer index (0 = input side)",
        )
    return figure


def _histogram_map(history):
    """log10|g| distribution of every layer (rows, input side at the bottom) at the last histogram step."""
    plt = _pyplot()
    counts = history.histograms()[-1]  # [layers, bins]
    total = counts.sum(axis=1, keepdims=True)
    frac = np.where(total > 0, counts / np.maximum(total, 1), np.nan)
    n = len(history.layers)
    fig, ax = plt.subplots(figsize=(9, figure_height(n)), layout="constrained")
    edges = history.hist_edges
    image = ax.imshow(
        np.ma.masked_invalid(frac),
        aspect="auto",
        origin="lower",
        cmap="magma_r",
        interpolation="nearest",
        extent=(edges[0], edges[-1], -0.5, n - 0.5),
    )
    ticks = layer_ticks(n)
    ax.set_yticks(ticks, [history.layers[i] for i in ticks], fontsize=7 if n > 20 else 8)
    ax.set_xlabel("log10 |∂L/∂θ| (decades; the end bins are open)")
    ax.set_ylabel("layer (input side at the bottom)")
    ax.set_title(f"Distribution of gradient magnitudes per layer, step {int(history.hist_steps[-1])}")
    fig.colorbar(image, ax=ax, label="fraction of the layer's parameters", pad=0.01)
    return fig


def _gains(history):
    """Median backward gain per layer split into weights × activation derivative (log scale), input at the
    bottom."""
    plt = _pyplot()
    with warnings.catch_warnings():  # a layer never measured (the first has no input gradient) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        w = np.nanmedian(history.stat(sn.BACKWARD_GAIN, sampled_only=True), axis=0)
        a = np.nanmedian(history.stat(sn.GAIN_ACTIVATION, sampled_only=True), axis=0)
    n = len(history.layers)
    y = np.arange(n)
    fig, ax = plt.subplots(figsize=(9, figure_height(n)), layout="constrained")
    ax.barh(y - 0.2, w, height=0.4, label="weights part")
    ax.barh(y + 0.2, a, height=0.4, label="activation-derivative part (σ')")
    ax.plot(w * np.nan_to_num(a, nan=1.0), y, "k.", label="product (gain of the layer)")
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ticks = layer_ticks(n)
    ax.set_yticks(ticks, [history.layers[i] for i in ticks], fontsize=7 if n > 20 else 8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("gradient passed back (out ÷ in; < 1 shrinks it), median over sampled steps (log scale)")
    ax.set_title("Backward gain of each layer: weights × activation derivative")
    ax.legend(fontsize=8)
    return fig


def _layer_table(history) -> str:
    h = history
    shown = [(name, header) for name, header in GRADIENT_COLUMNS + HOOK_COLUMNS if h.has(name)]
    counts = np.nansum(h.stat(sn.NONFINITE), axis=0) if h.has(sn.NONFINITE) else None
    last = {name: h.last(name) for name, _ in shown}
    rows = []
    for i, layer in enumerate(h.layers):
        row = [layer, h.kinds[i], h.numel[i] or ""]
        row += [float(last[name][i]) if np.isfinite(last[name][i]) else "—" for name, _ in shown]
        if counts is not None:
            row.append(int(counts[i]))
        rows.append(row)
    columns = ["layer (input side first)", "type", "parameters"] + [header for _, header in shown]
    columns += ["inf/NaN elements"] if counts is not None else []
    return table_html("Every layer, latest values", columns, rows)


def watch_page(history, diagnosis: Any = None, *, title: str = "watch") -> str:
    """The HTML of the report page of ``history`` (a :class:`~gradwatch.probe.History`) and its diagnosis."""
    h = history
    steps = h.steps
    span = f"steps {int(steps[0])}–{int(steps[-1])}" if len(steps) else "no step recorded"
    parts = [
        f"<h1>gradwatch report — {html.escape(title)}</h1>",
        f"<p>{len(h.layers)} layers, {len(h)} recorded steps ({span}); statistics: "
        f"{html.escape(', '.join(h.stats))}. Activation statistics are "
        f"{html.escape(str(h.meta.get('activation_scope', 'global')))}.</p>",
        "<h2>Diagnosis</h2>",
        _diagnosis_html(diagnosis),
    ]
    if len(h):
        parts.append(
            "<h2>Per layer and step</h2><p>Each row is a layer, the input side at the bottom; colour is "
            "log10 of the value; grey: not measured (or zero); red: the gradient had inf/NaN elements.</p>"
        )
        for stat in HEATMAP_STATS:
            if h.has(stat):
                heatmap = LayerStepHeatmap(h, stat, sampled_only=stat in SAMPLED_STATS)
                parts.append(_png(heatmap.plot().figure))
        parts.append("<h2>Per layer over the steps</h2>")
        parts += [_png(_lines(h, stat)) for stat in LINE_STATS if h.has(stat)]
    if len(h.hist_steps):
        from gradwatch.report.watch_plots import GradientHistograms

        parts.append("<h2>Histograms of log10|∂L/∂θ|</h2>")
        parts.append(_png(_histogram_map(h)))
        parts.append(_png(GradientHistograms(h).plot().figure))
    if h.has(sn.BACKWARD_GAIN) and h.has(sn.GAIN_ACTIVATION):
        parts.append("<h2>Backward gains</h2>")
        parts.append(_png(_gains(h)))
    parts.append(_layer_table(h))
    parts.append("<p><small>written by gradwatch; a self-contained page (no network needed)</small></p>")
    return _page(f"gradwatch — {title}", "\n".join(parts))


def write_watch_page(path: str | os.PathLike, history, diagnosis: Any = None, *, title: str = "watch") -> Path:
    """Write :func:`watch_page` to ``path`` (parent directories created); returns the path."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(watch_page(history, diagnosis, title=title), encoding="utf-8")
    tmp.replace(path)
    return path

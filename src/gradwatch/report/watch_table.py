"""The watch's terminal report: one row per layer with its latest statistics, then the diagnosis (rich)."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from gradwatch.probe.stats import BACKWARD_STATS, FORWARD_STATS
from gradwatch.report.terminal import fmt_sci

# (statistic, column header) in the order shown; a column appears when the statistic was recorded
COLUMNS = [("grad_norm", "‖∂L/∂θ‖"), ("grad_abs_mean", "mean |∂L/∂θ|"), ("grad_abs_max", "max |∂L/∂θ|"),
           ("weight_norm", "‖θ‖"), ("update_ratio", "‖Δθ‖/‖θ‖"), ("act_saturation", "saturated"),
           ("act_dead", "dead"), ("backward_gain", "gain: weights"), ("gain_activation", "× σ'")]
_PERCENT = ("act_saturation", "act_dead")
_HOOKED = (*FORWARD_STATS, *BACKWARD_STATS)  # from module hooks: local to the rank under DDP


def watch_table(history, *, title: str | None = None) -> Table:
    """Latest value of each recorded statistic per layer (input side first); non-finite counts are summed."""
    h = history
    last_step = int(h.steps[-1]) if len(h) else None
    if title is None:
        title = f"gradwatch: {len(h.layers)} layers, {len(h)} recorded steps (last: {last_step})"
        if any(h.has(name) for name in _HOOKED):
            title += f"; activation statistics {h.meta.get('activation_scope', 'global')}"
    table = Table(title=title, title_justify="left")
    table.add_column("layer")
    table.add_column("type", style="dim")
    shown = [(name, header) for name, header in COLUMNS if h.has(name)]
    for _, header in shown:
        table.add_column(header, justify="right")
    if h.has("nonfinite"):
        table.add_column("non-finite", justify="right")
    values = {name: h.last(name) for name, _ in shown}
    nonfinite = np.nansum(h.stat("nonfinite"), axis=0) if h.has("nonfinite") else None
    for i, (layer, kind) in enumerate(zip(h.layers, h.kinds)):
        cells = []
        for name, _ in shown:
            v = values[name][i]
            cells.append("—" if not np.isfinite(v) else f"{v:.0%}" if name in _PERCENT else fmt_sci(float(v)))
        if nonfinite is not None:
            cells.append(str(int(nonfinite[i])))
        style = "red" if nonfinite is not None and nonfinite[i] > 0 else None
        table.add_row(layer, kind, *cells, style=style)
    return table


def print_watch_report(history, diagnosis, console: Console | None = None) -> None:
    """The table, then the diagnosis as text (green when healthy, yellow otherwise)."""
    console = console or Console()
    console.print(watch_table(history))
    console.print(str(diagnosis), style="green" if diagnosis.healthy else "yellow", markup=False, highlight=False)

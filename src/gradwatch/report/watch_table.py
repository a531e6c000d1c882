"""The watch's terminal report: one row per layer with its latest statistics, then the diagnosis (rich)."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from gradwatch.report.safe_text import plain
from gradwatch.report.terminal import fmt_sci

# (statistic, column header) in the order shown; a column appears when the statistic was recorded. Gradient and
# weight statistics (every recorded step) and the sampled hook statistics go in two tables, so that each fits an
# 80-column terminal.
GRADIENT_COLUMNS = [("grad_norm", "‖∂L/∂θ‖"), ("grad_abs_mean", "mean |∂L/∂θ|"), ("grad_abs_max", "max |∂L/∂θ|"),
                    ("weight_norm", "‖θ‖"), ("update_ratio", "‖Δθ‖/‖θ‖")]
HOOK_COLUMNS = [("act_mean", "mean act"), ("act_std", "std act"), ("act_saturation", "saturated"),
                ("act_dead", "dead"), ("backward_gain", "gain: weights"), ("gain_activation", "× σ'")]
_PERCENT = ("act_saturation", "act_dead")


def _table(history, columns, title: str, *, nonfinite: bool) -> Table:
    h = history
    table = Table(title=plain(title), title_justify="left")
    table.add_column("layer")
    table.add_column("type", style="dim")
    shown = [(name, header) for name, header in columns if h.has(name)]
    for _, header in shown:
        table.add_column(header, justify="right")
    counts = np.nansum(h.stat("nonfinite"), axis=0) if nonfinite and h.has("nonfinite") else None
    if counts is not None:
        table.add_column("inf/NaN", justify="right")
    values = {name: h.last(name) for name, _ in shown}
    for i, (layer, kind) in enumerate(zip(h.layers, h.kinds)):
        cells = []
        for name, _ in shown:
            v = values[name][i]
            cells.append("—" if not np.isfinite(v) else f"{v:.0%}" if name in _PERCENT else fmt_sci(float(v)))
        if counts is not None:
            cells.append(str(int(counts[i])))
        style = "red" if counts is not None and counts[i] > 0 else None
        table.add_row(plain(layer), plain(kind), *cells, style=style)
    return table


def watch_table(history, *, title: str | None = None) -> Table:
    """Latest value of each gradient and weight statistic per layer (input side first); non-finite counts are
    summed over the run."""
    h = history
    last_step = int(h.steps[-1]) if len(h) else None
    if title is None:
        title = f"gradwatch: {len(h.layers)} layers, {len(h)} recorded steps (last: {last_step})"
    return _table(h, GRADIENT_COLUMNS, title, nonfinite=True)


def hook_table(history) -> Table | None:
    """Latest sampled activation and backward-gain statistics per layer, or None when none were recorded."""
    h = history
    recorded = [name for name, _ in HOOK_COLUMNS if h.has(name)]
    if not recorded:
        return None
    steps = h.sampled_steps(recorded[0])
    sampled = f"last sampled step {int(steps[-1])}" if len(steps) else "no sampled step yet"
    return _table(h, HOOK_COLUMNS, f"activations and backward gains ({sampled}; "
                  f"{h.meta.get('activation_scope', 'global')})", nonfinite=False)


def print_watch_report(history, diagnosis, console: Console | None = None) -> None:
    """The table, then the diagnosis as text (green when healthy, yellow otherwise)."""
    console = console or Console()
    console.print(watch_table(history))
    hooks = hook_table(history)
    if hooks is not None:
        console.print(hooks)
    console.print(str(diagnosis), style="green" if diagnosis.healthy else "yellow", markup=False, highlight=False)

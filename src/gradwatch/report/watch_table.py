"""The watch's terminal report: one row per layer with its latest statistics, then the diagnosis (rich).

Every table shows the values of **one** recorded step (or one down-sampled window), named in its title: the last
step at which its statistics were recorded. A statistic last recorded at another step (sampled on other steps,
or NaN everywhere at the last one) goes into a table of its own, titled with that step — never under another
step's label.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from gradwatch import stat_names as sn
from gradwatch.report.safe_text import plain
from gradwatch.report.terminal import fmt_sci

# (statistic, column header) in the order shown; a column appears when the statistic was recorded. Gradient and
# weight statistics (every recorded step) and the sampled hook statistics go in separate tables, so that each fits
# an 80-column terminal.
GRADIENT_COLUMNS = [
    (sn.GRAD_NORM, "‖∂L/∂θ‖"),
    (sn.GRAD_ABS_MEAN, "mean |∂L/∂θ|"),
    (sn.GRAD_ABS_MAX, "max |∂L/∂θ|"),
    (sn.WEIGHT_NORM, "‖θ‖"),
    (sn.UPDATE_RATIO, "‖Δθ‖/‖θ‖"),
]
HOOK_COLUMNS = [
    (sn.ACT_MEAN, "mean act"),
    (sn.ACT_STD, "std act"),
    (sn.ACT_SATURATION, "saturated"),
    (sn.ACT_DEAD, "dead"),
    (sn.BACKWARD_GAIN, "gain: weights"),
    (sn.GAIN_ACTIVATION, "× σ'"),
]
_PERCENT = (sn.ACT_SATURATION, sn.ACT_DEAD)


def _groups(history, columns) -> list[tuple[int, list[tuple[str, str]]]]:
    """The recorded columns grouped by the row (index) of their last value, the latest row first."""
    h = history
    by_row: dict[int, list[tuple[str, str]]] = {}
    for name, header in columns:
        if not h.has(name):
            continue
        rows = np.flatnonzero(~np.isnan(h.stat(name)).all(axis=1))
        by_row.setdefault(int(rows[-1]), []).append((name, header))
    return sorted(by_row.items(), key=lambda item: -item[0])


def _where(history, row: int) -> str:
    first, last = (int(s) for s in history.spans[row])
    return f"step {first}" if first == last else f"steps {first}–{last}, window mean"


def _table(history, shown, row: int, title: str, *, nonfinite: bool) -> Table:
    h = history
    table = Table(title=plain(title), title_justify="left")
    table.add_column("layer")
    table.add_column("type", style="dim")
    for _, header in shown:
        table.add_column(header, justify="right")
    counts = np.nansum(h.stat(sn.NONFINITE, reduce="sum"), axis=0) if nonfinite and h.has(sn.NONFINITE) else None
    if counts is not None:
        table.add_column("inf/NaN", justify="right")
    values = {name: h.stat(name)[row] for name, _ in shown}
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


def watch_tables(history, *, title: str | None = None) -> list[Table]:
    """The gradient and weight statistics per layer (input side first), one table per step shown (usually one:
    the last recorded step); non-finite counts are summed over the run in the first."""
    h = history
    groups = _groups(h, GRADIENT_COLUMNS)
    if not groups:
        return [
            _table(
                h, [], len(h) - 1, title or f"gradwatch: {len(h.layers)} layers, nothing recorded yet", nonfinite=False
            )
        ]
    tables = []
    for k, (row, shown) in enumerate(groups):
        if k == 0:
            last = int(h.spans[-1, 1])
            head = title or (
                f"gradwatch: {len(h.layers)} layers, {h.n_recorded} recorded steps (last: {last})"
                + ("" if row == len(h) - 1 and _where(h, row) == f"step {last}" else f"; values at {_where(h, row)}")
            )
        else:
            head = f"last recorded at {_where(h, row)}"
        tables.append(_table(h, shown, row, head, nonfinite=k == 0))
    return tables


def watch_table(history, *, title: str | None = None) -> Table:
    """The first of :func:`watch_tables`: the statistics recorded at the last step."""
    return watch_tables(history, title=title)[0]


def hook_tables(history) -> list[Table]:
    """The sampled activation and backward-gain statistics per layer, one table per sampled step shown (usually
    one: the last sampled step); empty when none were recorded."""
    h = history
    scope = h.meta.get("activation_scope", "global")
    return [
        _table(
            h, shown, row, f"activations and backward gains (last sampled {_where(h, row)}; {scope})", nonfinite=False
        )
        for row, shown in _groups(h, HOOK_COLUMNS)
    ]


def hook_table(history) -> Table | None:
    """The first of :func:`hook_tables`, or None when no hook statistic was recorded."""
    tables = hook_tables(history)
    return tables[0] if tables else None


def print_watch_report(history, diagnosis, console: Console | None = None) -> None:
    """The tables, then the diagnosis as text (green when healthy, yellow otherwise)."""
    console = console or Console()
    for table in watch_tables(history) + hook_tables(history):
        console.print(table)
    from gradwatch.report.rewrap import rewrap

    console.print(
        rewrap(str(diagnosis), console.width),
        style="green" if diagnosis.healthy else "yellow",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )  # wrapped once, to the console's width

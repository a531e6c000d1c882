"""Rich tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from gradwatch.report.safe_text import plain


def fmt_sci(v: float | None) -> str:
    return "—" if v is None else f"{v:.2g}" if 1e-2 <= abs(v) < 1e3 else f"{v:.1e}"


def layer_gradient_table(
    layers: Sequence[str],
    neurons: Sequence[int],
    values: Sequence[float],
    ratios: Sequence[float | None],
    *,
    title: str = "",
    value_header: str = "mean |∂C/∂W|",
    inputs: int | None = None,
    reference: Sequence[float] | None = None,
    reference_header: str = "",
) -> Table:
    """Seed 001's layout: one row per layer from input to output, with the ratio to the next layer.

    ``reference`` adds a column of published values beside the measured ones (same length as ``values``).
    """
    table = Table(title=title, title_justify="left")
    table.add_column("layer")
    table.add_column("neurons", justify="right")
    table.add_column(value_header, justify="right")
    table.add_column("next / this", justify="right")
    ref = list(reference) if reference is not None and len(reference) == len(values) else None
    if ref:
        table.add_column(reference_header, justify="right", style="dim")
    if inputs is not None:
        table.add_row("input", str(inputs), "", "", *([""] if ref else []), style="dim")
    peak = max(values) if values else 0.0
    for i, (name, n, v, r) in enumerate(zip(layers, neurons, values, ratios)):
        style = "red" if peak > 0 and v < peak * 1e-3 else None
        extra = [fmt_sci(ref[i])] if ref else []
        table.add_row(name, str(n), fmt_sci(v), "" if r is None else f"{r:.1f}×", *extra, style=style)
    return table


def plain_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    """A rich table from plain rows; floats in compact scientific notation."""
    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt_sci(v) if isinstance(v, float) else "" if v is None else plain(v) for v in row))
    return table

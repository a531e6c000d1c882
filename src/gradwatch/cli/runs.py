"""``gradwatch report`` (the HTML page of a stored run) and ``gradwatch compare`` (two runs' per-layer gradient
flow side by side), and how ``gradwatch runs`` / ``show`` present a watched run of a user's own model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from gradwatch.cli.common import console, output_file, print_json
from gradwatch.errors import ConfigError
from gradwatch.report.safe_text import markup_safe, plain
from gradwatch.report.terminal import fmt_sci
from gradwatch.stat_names import GRAD_NORM


def _store_option() -> Any:
    from gradwatch.store import DEFAULT_STORE

    return typer.Option(str(DEFAULT_STORE), "--store", help="SQLite run store.")


def _open(store: str):
    from gradwatch.store import RunStore

    if not Path(store).expanduser().is_file():
        raise ConfigError(
            "store",
            store,
            "no run store there; pass --store PATH (the file given to "
            "gw.watch(..., store=PATH) or `gradwatch train --store`)",
        )
    return RunStore(store, readonly=True)


# ---- how runs / show present a watched run ------------------------------------------------------------------
def watched_row(run: dict[str, Any]) -> dict[str, str]:
    """The ``gradwatch runs`` columns for a watched run (model class, layers; no dataset, init or epochs)."""
    c = run["config"]
    layers = len(c.get("layout", {}).get("kinds", []))
    return {
        "model": f"{c.get('model', '')} (watch)",
        "dataset": "",
        "net": f"{layers} layers",
        "init": "",
        "epochs": "",
        "acc": "",
    }


def show_watched(run: dict[str, Any], history) -> None:
    """``gradwatch show`` for a watched run: what was watched, the config the user passed, the per-layer table
    and the stored diagnosis."""
    from gradwatch.report.watch_table import watch_table

    c = run["config"]
    console.print(
        f"[bold]run {markup_safe(run['id'])}[/] — {markup_safe(run['status'])}; a watched run of "
        f"{markup_safe(c.get('model'))} (optimizer {markup_safe(c.get('optimizer') or 'none')}); gradwatch "
        f"{markup_safe(run['gradwatch_version'])}, torch {markup_safe(run['torch_version'])}",
        highlight=False,
    )
    if c.get("name"):
        console.print(plain(f"name: {c['name']}"), highlight=False)
    console.print(plain("config: " + (json.dumps(c.get("user")) if c.get("user") else "none given")), highlight=False)
    console.print(plain("watch: " + ", ".join(f"{k}={v}" for k, v in c.get("watch", {}).items())), highlight=False)
    if run.get("error"):
        console.print(f"[red]error:[/] {markup_safe(run['error'])}", highlight=False)
    if history.layers:
        console.print(watch_table(history))
    if run["summary"].get("diagnosis"):
        from gradwatch.report.rewrap import rewrap
        from gradwatch.report.safe_text import clean

        console.print(
            rewrap(clean(run["summary"]["diagnosis"], keep_newlines=True), console.width),
            style="green" if run["summary"].get("healthy") else "yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )  # wrapped once, here, to this terminal's width


# ---- report ------------------------------------------------------------------------------------------------
def _report(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix), from `gradwatch runs`."),
    html: str = typer.Option(..., "--html", help="Write the self-contained report page to this file."),
    store: str = _store_option(),
) -> None:
    """Write the HTML report page of a stored run (a watched run or a `gradwatch train` run)."""
    from gradwatch.diagnose import diagnose
    from gradwatch.report.watch_page import write_watch_page
    from gradwatch.store.watched import load_history

    output_file(html, "html", ".html")
    with _open(store) as db:
        run = db.get(run_id)
        history = load_history(db, run["id"])
    if not len(history):
        raise ConfigError("run_id", run_id, "this run has no recorded watch history to report")
    path = write_watch_page(html, history, diagnose(history), title=run["id"])
    console.print(plain(f"report of run {run['id']} written to {path}"), highlight=False, soft_wrap=True)


# ---- compare -----------------------------------------------------------------------------------------------
def _compare(
    run_a: str = typer.Argument(..., help="First run id (or a unique prefix)."),
    run_b: str = typer.Argument(..., help="Second run id (or a unique prefix)."),
    stat: str = typer.Option(GRAD_NORM, help="The per-layer statistic to compare."),
    plot: str = typer.Option(None, "--plot", help="Also write the comparison plot (PNG) to this file."),
    store: str = _store_option(),
    json_: bool = typer.Option(False, "--json", help="Print the comparison as JSON on stdout."),
) -> None:
    """Compare two stored runs' per-layer gradient flow: each layer's median statistic over the steps."""
    from gradwatch.report.compare_plot import GradientFlowComparison, median_per_layer
    from gradwatch.store.watched import load_history

    output_file(plot, "plot", ".png")
    with _open(store) as db:
        ids = [db.resolve(run_a), db.resolve(run_b)]
        histories = [load_history(db, rid) for rid in ids]
    for rid, h in zip(ids, histories):
        if stat not in h.stats or not len(h):
            raise ConfigError(
                "stat",
                stat,
                f"run {rid} has no recorded {stat!r}; it has: " + (", ".join(h.stats) or "no watch history"),
            )
    medians = [dict(zip(h.layers, median_per_layer(h, stat).tolist())) for h in histories]
    layers = list(dict.fromkeys(histories[0].layers + histories[1].layers))
    rows = []
    for layer in layers:
        a, b = (m.get(layer, float("nan")) for m in medians)
        ratio = b / a if np.isfinite(a) and np.isfinite(b) and a != 0 else float("nan")
        rows.append({"layer": layer, ids[0]: a, ids[1]: b, "ratio": ratio})
    if plot is not None:
        GradientFlowComparison(histories, ids, stat).plot().save(plot)
    if json_:
        print_json({"stat": stat, "runs": ids, "layers": rows, "plot": plot})
        return
    table = Table(title=f"median {stat} per layer over the recorded steps (input side first)", title_justify="left")
    for col in ("layer", ids[0], ids[1], "second / first"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in rows:
        table.add_row(r["layer"], *(fmt_sci(r[k]) if np.isfinite(r[k]) else "—" for k in (ids[0], ids[1], "ratio")))
    console.print(table)
    if plot is not None:
        console.print(plain(f"plot written to {plot}"), highlight=False, soft_wrap=True)


def register_runs(app: typer.Typer) -> None:
    """Add ``report`` and ``compare`` to the ``gradwatch`` app."""
    app.command("report")(_report)
    app.command("compare")(_compare)

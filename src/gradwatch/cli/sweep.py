"""``gradwatch sweep``: train every combination of swept lab knobs × seeds, resumably, and summarise.

Every flag of ``gradwatch train`` is accepted here as a fixed value (generated from the same definitions);
``--param NAME=V1,V2`` sweeps a knob (repeatable; range forms in :mod:`gradwatch.sweep.spec`), ``--file`` reads
a TOML/YAML sweep file. Runs are keyed by config + seed in the run store: re-running the same sweep skips the
completed runs and retries the interrupted and failed ones.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from gradwatch.cli.common import console, err_console, out_dir, print_json
from gradwatch.cli.train import config_parameters, given_options, store_option
from gradwatch.errors import ConfigError
from gradwatch.sweep.spec import MAX_RUNS

COLUMN_LABELS = {  # the table's metrics (the JSON has every one of summary.METRICS)
    "test_accuracy": "test acc",
    "test_loss": "test loss",
    "accuracy": "train acc",
    "grad_ratio": "‖g₁‖/‖g_L‖",
}
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
PROGRESS_LINES = 10  # without a terminal (a log file), a progress line every tenth of the sweep


def _progress(disabled: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("done {task.fields[done]} · failed {task.fields[failed]} · left {task.fields[left]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=disabled,
    )


def summary_table(rows, names: list[str], best_row) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows (strings) of the per-configuration summary; the best row is starred."""
    metrics = [m for m in COLUMN_LABELS if any(m in r.stats for r in rows)]
    columns = ["", *names, "seeds", *(COLUMN_LABELS.get(m, m) for m in metrics)]
    body = []
    for r in rows:
        cells = ["★" if r is best_row else ""] + [str(r.combo[n]) for n in names] + [str(len(r.seeds))]
        body.append(cells + [r.stats[m].text() if m in r.stats else "—" for m in metrics])
    return columns, body


def check_vmap(configs: list[Any]) -> None:
    """``--vmap`` with no run it can batch (e.g. ``--model rnn``) is a mistake, not a silent no-op."""
    from gradwatch.lab.batched import batchable

    reasons = [batchable(c) for c in configs]
    if reasons and all(reasons):
        raise ConfigError(
            "vmap",
            True,
            f"no run of this sweep can be trained vmapped ({reasons[0]}); --vmap "
            "batches plain MLPs that differ only in seed, init scale or lr: drop --vmap",
        )


def _sweep(
    param: list[str] | None,
    seeds: int | None,
    file: str | None,
    store: str,
    workers: int,
    backend: str,
    ray_address: str | None,
    vmap: bool,
    out: str | None,
    json_: bool,
    yes: bool,
    **options: Any,
) -> None:
    from gradwatch.sweep import spec as specs
    from gradwatch.sweep.runner import run_sweep
    from gradwatch.sweep.summary import best, best_metric, summarise

    base = specs.from_file(file) if file else None
    spec = specs.merge(base, param or [], given_options(options), seeds)
    spec.check_size(confirmed=yes)  # before listing a million configs
    configs = spec.configs()  # validate every combination before any work
    if vmap:
        check_vmap(configs)
    from gradwatch.store import RunStore
    from gradwatch.sweep.executors import make_executor

    make_executor(backend, workers, ray_address)  # --backend, --workers, --ray-address checked before any run
    RunStore(store).close()  # a --store that is not a run store is refused before any run
    target = out_dir(out)
    names = [n for n in spec.params if n != "seed"]
    progress = _progress(json_ or not err_console.is_terminal)  # a log file gets plain lines (on_event)
    state: dict[str, Any] = {"task": None, "done": 0, "failed": 0, "left": 0}

    def on_start(total: int, skipped: int) -> None:
        state["left"] = total - skipped
        if skipped and not json_:
            console.print(f"{skipped} of {total} runs already completed in {store}: skipped", highlight=False)
        state["task"] = progress.add_task("sweep", total=total - skipped, done=0, failed=0, left=state["left"])

    def on_event(kind: str, record: dict[str, Any]) -> None:
        state[kind] += 1
        state["left"] -= 1
        progress.update(state["task"], advance=1, done=state["done"], failed=state["failed"], left=state["left"])
        finished = state["done"] + state["failed"]
        total = finished + state["left"]
        if not json_ and not err_console.is_terminal and finished % max(1, total // PROGRESS_LINES) == 0:
            err_console.print(f"sweep: {finished}/{total} runs ({state['failed']} failed)", highlight=False)
        if kind == "failed" and not json_:
            err_console.print(f"run failed: {record.get('error')}", highlight=False, markup=False)

    with progress:
        outcome = run_sweep(
            spec,
            store,
            workers=workers,
            backend=backend,
            ray_address=ray_address,
            vmap=vmap,
            on_start=on_start,
            on_event=on_event,
        )
    runs = [outcome.runs[p.key] for p in outcome.planned if p.key in outcome.runs]
    rows = summarise(runs, names)
    top = best(rows)
    metric, _ = best_metric(rows)
    columns, body = summary_table(rows, names, top)
    label = (specs.describe(top.combo, names) or "the only configuration") if top else None
    payload = {
        "store": str(Path(store)),
        "total": len(outcome.planned),
        "skipped": outcome.skipped,
        "done": outcome.done,
        "failed": outcome.failed,
        "seconds": outcome.seconds,
        "spec": spec.to_dict(),
        "configs": [r.to_dict() for r in rows],
        "best": None
        if top is None
        else {
            "params": top.combo,
            "label": label,
            "metric": metric,
            "mean": top.stats[metric].mean,
            "spread": top.stats[metric].spread,
        },
    }
    if target is not None:
        from gradwatch.report.sweep_page import write_sweep_report

        paths = write_sweep_report(target, payload, runs, names, (columns, body), metric)
        payload["files"] = {k: str(p) for k, p in paths.items()}
    if json_:
        print_json(payload)
        return
    n_seeds = len(spec.seeds) if "seed" not in spec.params else 1
    table = Table(
        title=f"sweep: {len(rows)} configurations × {n_seeds} seed(s), mean ± spread over seeds "
        "(‖g₁‖/‖g_L‖: first-to-last layer gradient norm, geometric mean ×/÷ factor)",
        title_justify="left",
    )
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i <= len(names) else "right")
    for cells in body:
        table.add_row(*cells)
    console.print(table)
    console.print(
        f"{outcome.done} trained now, {outcome.skipped} skipped (completed before), {outcome.failed} "
        f"failed, in {outcome.seconds:.1f} s; store: {store}",
        highlight=False,
    )
    if top is not None:
        console.print(f"best by {metric}: {label} ({top.stats[metric].text()})", highlight=False)
    if target is not None:
        console.print(f"wrote {paths['html']}", highlight=False)
    if outcome.failed:
        raise typer.Exit(1)


def _sweep_command() -> Any:
    def command(**kwargs: Any) -> None:
        _sweep(**kwargs)

    def opt(name: str, annotation: Any, option: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=option)

    own = [
        opt(
            "param",
            Optional[list[str]],
            typer.Option(
                None,
                "--param",
                "-p",
                help="A swept knob NAME=V1,V2,... (any train flag's name; repeatable); numbers "
                "also NAME=log:START:STOP:N, lin:START:STOP:N, range:START:STOP:STEP.",
            ),
        ),
        opt(
            "seeds",
            Optional[int],
            typer.Option(None, "--seeds", help="Seeds per configuration: seed, seed+1, … (default 1)."),
        ),
        opt(
            "file",
            Optional[str],
            typer.Option(
                None,
                "--file",
                help="Sweep file (TOML or YAML with seeds, fixed and params); flags given here override it.",
            ),
        ),
        opt("store", str, store_option()),
        opt("workers", int, typer.Option(DEFAULT_WORKERS, "--workers", help="Runs in parallel (1: in this process).")),
        opt(
            "backend",
            str,
            typer.Option(
                "process",
                "--backend",
                help="process (a local process pool) or ray (needs the ray extra: pip install gradwatch\\[ray]).",
            ),
        ),
        opt(
            "ray_address",
            Optional[str],
            typer.Option(None, "--ray-address", help="Join this Ray cluster (e.g. auto); default: a local Ray."),
        ),
        opt(
            "vmap",
            bool,
            typer.Option(
                False,
                "--vmap/--no-vmap",
                help="Train plain MLPs that differ only in seed, init scale or lr as one vmapped model.",
            ),
        ),
        opt("out", Optional[str], typer.Option(None, "--out", help="Write sweep.html, sweep.json and PNG plots here.")),
        opt("json_", bool, typer.Option(False, "--json", help="Print the summary as JSON on stdout.")),
        opt(
            "yes",
            bool,
            typer.Option(False, "--yes", help=f"Run a sweep of more than {MAX_RUNS:,} runs (refused without it)."),
        ),
    ]
    names = {p.name for p in own}
    signature = inspect.Signature(own + [p for p in config_parameters() if p.name not in names])
    command.__signature__ = signature  # type: ignore[attr-defined]  # what typer reads
    command.__doc__ = (
        "Sweep lab knobs × seeds (resumable: completed runs in the store are skipped), then "
        "summarise per configuration."
    )
    return command


def register_sweep(app: typer.Typer) -> None:
    """Add ``sweep`` to the ``gradwatch`` app."""
    app.command("sweep", help=_sweep_command().__doc__)(_sweep_command())

"""``gradwatch train`` (train any network of the seeds and store the run), ``gradwatch runs``, ``gradwatch show``.

The options of ``train`` are generated from :class:`gradwatch.lab.Config`: every field is a flag with the same
name in dashes (``--init-std 0.01``, ``--residual/--no-residual``, ``--tbptt 10,20``, ``--sizes 100,50``), so
the CLI and the Python API can never disagree.
"""

from __future__ import annotations

import inspect
import re
import math
import types
import typing
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from gradwatch.cli.common import console, err_console, print_json
from gradwatch.errors import ConfigError
from gradwatch.report.terminal import fmt_sci

LIST_FIELDS = ("sizes", "tbptt")  # given on the command line as comma-separated integers
EPOCH_COLUMNS = (("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val loss"), ("val_accuracy", "val acc"),
                 ("test_loss", "test loss"), ("test_accuracy", "test acc"), ("grad_norm", "‖g‖"))


def store_option() -> Any:
    from gradwatch.store import DEFAULT_STORE

    return typer.Option(str(DEFAULT_STORE), "--store", help="SQLite run store (created if missing).")


def _option_type(annotation: Any) -> type:
    """The click-friendly type of a Config field: lists become strings, Literals their base type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _option_type(args[0])
    if origin is typing.Literal:
        return type(args[0])
    if origin is list:
        return str
    return annotation if annotation in (int, float, bool, str) else str


def config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter (a typer option) per Config field: the flags of ``train``, reused by ``sweep``."""
    from gradwatch.lab.config import Config

    params = []
    for name, field in Config.model_fields.items():
        default = field.default
        desc = re.sub(r"\[(default[^\]]*)\]", r"(\1)", field.description or "").replace("[", "\\[")
        shown = "" if default is None else f" (default: {default})"
        help_ = desc + ("" if "(default" in desc else shown)
        flag = "--" + name.replace("_", "-")
        typ = _option_type(field.annotation)
        decls = [f"{flag}/--no-{name.replace('_', '-')}"] if typ is bool else [flag]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[typ],
                                        default=typer.Option(None, *decls, help=help_, show_default=False)))
    return params


def _parse_list(name: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise ConfigError(name, text, "expected comma-separated integers, e.g. 100,50") from None


def given_options(options: dict[str, Any]) -> dict[str, Any]:
    """The Config flags that were given (not None), list flags parsed: ``gradwatch sweep``'s fixed values."""
    given = {k: v for k, v in options.items() if v is not None}
    for name in LIST_FIELDS:
        if name in given:
            given[name] = _parse_list(name, given[name])
    return given


def config_from_options(options: dict[str, Any]):
    """A :class:`Config` from the flags that were given (the others keep the Config defaults)."""
    from gradwatch.lab.config import Config

    return Config(**given_options(options))


def _epoch_line(m: dict[str, Any]) -> str:
    parts = [f"epoch {m['epoch']:>3}"]
    for key, label in EPOCH_COLUMNS:
        if key in m:
            parts.append(f"{label} {m[key]:.4g}")
    parts.append(f"{m.get('seconds', 0):.2f} s")
    return "  ".join(parts)


def _train(store: str, json_: bool, **options: Any) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from gradwatch.lab import train as lab_train
    from gradwatch.lab.prepare import prepare  # noqa: F401  (import cost paid before the bar starts)
    from gradwatch.store import RunStore

    cfg = config_from_options(options)
    steps_per_epoch = None
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=err_console, transient=True, disable=json_)
    with RunStore(store) as db, progress:
        task = progress.add_task("training", total=None)

        def on_step(step: int, model: Any) -> None:
            progress.update(task, completed=step)

        def on_epoch(epoch: int, m: dict[str, Any]) -> None:
            nonlocal steps_per_epoch
            if steps_per_epoch is None and m.get("step"):
                steps_per_epoch = m["step"]
                total = steps_per_epoch * cfg.epochs
                progress.update(task, total=min(total, cfg.steps) if cfg.steps else total)
            progress.update(task, description=f"epoch {epoch}/{cfg.epochs}")
            if not json_:
                console.print(_epoch_line(m), highlight=False, soft_wrap=True)

        run = lab_train(cfg, store=db, on_step=on_step, on_epoch=on_epoch)
    if json_:
        print_json({"id": run.id, "status": run.status, "config": cfg.to_dict(), "metrics": run.metrics,
                    "summary": run.summary(), "store": str(Path(store))})
        return
    _print_run_footer(run, store)


def _print_run_footer(run: Any, store: str) -> None:
    cfg = run.config
    if run.pretraining:
        t = Table(title="layer-wise pretraining (autoencoder reconstruction error)", title_justify="left")
        for col in ("layer", "before", "after"):
            t.add_column(col, justify="right" if col != "layer" else "left")
        for r in run.pretraining:
            t.add_row(r.layer, fmt_sci(r.error_before), fmt_sci(r.error_after))
        console.print(t)
    if run.time_grad_norms:
        console.print(time_grad_line(run.time_grad_norms[0], "at the first step"), highlight=False)
    if run.history is not None and run.diagnosis is not None:
        from gradwatch.report.watch_table import print_watch_report

        print_watch_report(run.history, run.diagnosis, console=console)
    elif cfg.model == "esn":
        console.print("echo state network: the reservoir is fixed and the readout solved in closed form, "
                      "so no gradient flows and there is nothing to watch", highlight=False)
    console.print(f"run {run.id} ({run.status}) stored in {store}; see it again with "
                  f"`gradwatch show {run.id}`", highlight=False, soft_wrap=True)


def time_grad_line(norms: list[float], when: str) -> str:
    """‖∂L/∂h_t‖ from the last step back to the first, in a few numbers (seed 002's fading picture)."""
    t = len(norms)
    picks = sorted({t - 1, (3 * t) // 4, t // 2, t // 4, 0}, reverse=True)
    body = ", ".join(f"t={i + 1}: {fmt_sci(norms[i])}" for i in picks)
    return f"‖∂L/∂h_t‖ of the first recurrent layer {when}: {body}"


def _train_command() -> Any:
    def command(**kwargs: Any) -> None:
        _train(**kwargs)

    extra = [
        inspect.Parameter("store", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=store_option()),
        inspect.Parameter("json_", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                          default=typer.Option(False, "--json", help="Print the run as JSON on stdout.")),
    ]
    command.__signature__ = inspect.Signature(config_parameters() + extra)  # type: ignore[attr-defined]
    command.__doc__ = ("Train a network of the seeds (default: a 3×100 ReLU MLP with He init on digits, Adam, "
                       "10 epochs), watch its gradients, store the run.")
    return command


def _runs(store: str = store_option(),
          limit: int = typer.Option(20, help="Show at most this many runs, newest first."),
          json_: bool = typer.Option(False, "--json", help="Print the runs as JSON on stdout.")) -> None:
    """List the stored runs, newest first."""
    import time

    from gradwatch.store import RunStore

    with RunStore(store) as db:
        rows = db.runs(limit=limit)
    if json_:
        print_json(rows)
        return
    table = Table(title=f"runs in {store}", title_justify="left")
    for col in ("id", "status", "model", "dataset", "net", "init", "epochs", "test acc", "started"):
        table.add_column(col, justify="right" if col in ("epochs", "test acc") else "left")
    for r in rows:
        c, s = r["config"], r["summary"]
        net = (f"{len(c['sizes'])}×{c['sizes']}" if c.get("sizes") is not None
               else f"{c.get('depth')}×{c.get('width')} {c.get('activation')}")
        acc = s.get("test_accuracy")
        if "experiment" in c:  # a `gradwatch lab all` record of a whole experiment
            table.add_row(r["id"], r["status"], f"lab {c['experiment']}", "", "", "", "", "",
                          time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started"])))
            continue
        table.add_row(r["id"], r["status"], c.get("model", ""), c.get("dataset", ""), net, c.get("init", ""),
                      str(s.get("epoch", "")), "" if acc is None else f"{acc:.3f}",
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started"])))
    console.print(table)
    if not rows:
        console.print("no runs yet: `gradwatch train` makes one")


def _show(run_id: str = typer.Argument(..., help="Run id (or a unique prefix), from `gradwatch runs`."),
          store: str = store_option(),
          json_: bool = typer.Option(False, "--json", help="Print the run as JSON on stdout.")) -> None:
    """Show one stored run: its config, metrics per epoch and per-layer gradient summary."""
    from gradwatch.lab.config import Config
    from gradwatch.store import RunStore

    if not Path(store).expanduser().is_file():
        raise ConfigError("store", store, "no run store there; train a run first or pass --store")
    with RunStore(store) as db:
        run = db.get(run_id)
        metrics = db.metrics(run["id"])
        history = db.history(run["id"])
        times = db.time_grads(run["id"])
    if json_:
        print_json({**run, "metrics": metrics,
                    "history": {"layers": history["layers"], "steps": history["steps"].tolist(),
                                "stats": {k: v.tolist() for k, v in history["stats"].items()}},
                    "time_grads": {str(k): v.tolist() for k, v in times.items()}})
        return
    defaults = Config().to_dict()
    changed = {k: v for k, v in run["config"].items() if defaults.get(k) != v}
    console.print(f"[bold]run {run['id']}[/] — {run['status']}; gradwatch {run['gradwatch_version']}, "
                  f"torch {run['torch_version']}", highlight=False)
    console.print("config (non-default): " + (", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"),
                  highlight=False)
    if run.get("error"):
        console.print(f"[red]error:[/] {run['error']}", highlight=False)
    table = Table(title="metrics per epoch", title_justify="left")
    cols = ["epoch"] + [k for k, _ in EPOCH_COLUMNS if any(k in m for m in metrics)]
    for c in cols:
        table.add_column(dict(EPOCH_COLUMNS).get(c, c), justify="right")
    for m in metrics:
        table.add_row(*[str(m["epoch"]) if c == "epoch" else _fmt(m.get(c)) for c in cols])
    console.print(table)
    if history["layers"]:
        from gradwatch.lab.watching import history_from_store
        from gradwatch.report.watch_table import watch_table

        console.print(watch_table(history_from_store(history)))
    if run["summary"].get("diagnosis"):
        console.print(run["summary"]["diagnosis"], style="green" if run["summary"].get("healthy") else "yellow",
                      markup=False, highlight=False)
    for epoch, norms in sorted(times.items())[:1] + sorted(times.items())[-1:]:
        console.print(time_grad_line(norms.tolist(), f"at the start of epoch {epoch}"), highlight=False)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.4g}"


def register_train(app: typer.Typer) -> None:
    """Add ``train``, ``runs`` and ``show`` to the ``gradwatch`` app."""
    app.command("train", help=_train_command().__doc__)(_train_command())
    app.command("runs")(_runs)
    app.command("show")(_show)

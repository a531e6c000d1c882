"""``gradwatch train`` (train any network of the lectures and store the run), ``gradwatch runs``, ``gradwatch show``.

The options of ``train`` are generated from :class:`gradwatch.lab.Config`: every field is a flag with the same
name in dashes (``--init-std 0.01``, ``--residual/--no-residual``, ``--tbptt 10,20``, ``--sizes 100,50``), so
the CLI and the Python API can never disagree.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from gradwatch.cli.common import console, open_store, print_json
from gradwatch.errors import ConfigError
from gradwatch.report.safe_text import clean, markup_safe, plain
from gradwatch.report.terminal import fmt_sci
from gradwatch.sources import cite

DIVERGED_EXIT = 3  # `gradwatch train`'s exit code when the run diverged to a non-finite loss
LIST_FIELDS = ("sizes", "tbptt")  # given on the command line as comma-separated integers
EPOCH_COLUMNS = (
    ("loss", "loss"),
    ("accuracy", "acc"),
    ("val_loss", "val loss"),
    ("val_accuracy", "val acc"),
    ("test_loss", "test loss"),
    ("test_accuracy", "test acc"),
    ("grad_norm", "‖g‖"),
)


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
        desc = re.sub(r"\[(default[^\]]*)\]", r"(\1)", cite(field.description or "")).replace("[", "\\[")
        shown = "" if default is None else f" (default: {default})"
        help_ = desc + ("" if "(default" in desc else shown)
        flag = "--" + name.replace("_", "-")
        typ = _option_type(field.annotation)
        decls = [f"{flag}/--no-{name.replace('_', '-')}"] if typ is bool else [flag]
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Optional[typ],
                default=typer.Option(None, *decls, help=help_, show_default=False),
            )
        )
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


class EpochLines:
    """Per-epoch metrics as fixed-width rows under one header, so they stay aligned and fit 80 columns."""

    def __init__(self) -> None:
        self.columns: list[tuple[str, str]] | None = None

    def header(self, m: dict[str, Any]) -> str:
        self.columns = [(k, label) for k, label in EPOCH_COLUMNS if k in m]
        return "epoch " + " ".join(f"{label:>{self._width(label)}}" for _, label in self.columns) + "  seconds"

    def row(self, m: dict[str, Any]) -> str:
        cells = [f"{_compact(m.get(k)):>{self._width(label)}}" for k, label in self.columns or []]
        return f"{m['epoch']:>5} " + " ".join(cells) + f"  {m.get('seconds', 0):>7.2f}"

    @staticmethod
    def _width(label: str) -> int:
        return max(len(label), 8)


def _train(store: str, json_: bool, **options: Any) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from gradwatch.lab import train as lab_train
    from gradwatch.lab.prepare import prepare  # noqa: F401  (import cost paid before the bar starts)

    cfg = config_from_options(options)
    steps_per_epoch = None
    lines = EpochLines()
    # One console for the bar and the epoch rows: rows are printed above the live bar, never through it. The bar
    # is shown only when stdout is a terminal (a pipe or file gets the rows alone).
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=json_ or not console.is_terminal,
    )
    with open_store(store) as db, progress:
        task = progress.add_task("training", total=None)

        def on_step(step: int, model: Any) -> None:
            progress.update(task, completed=step)

        def on_epoch(epoch: int, m: dict[str, Any]) -> None:
            nonlocal steps_per_epoch
            if steps_per_epoch is None and m.get("step"):
                steps_per_epoch = m["step"]
                total = steps_per_epoch * cfg.epochs
                progress.update(task, total=min(total, cfg.steps) if cfg.steps else total)
            progress.update(task, description=f"epoch {min(epoch + 1, cfg.epochs)}/{cfg.epochs}")
            if not json_:
                if lines.columns is None:
                    progress.console.print(lines.header(m), highlight=False, markup=False, style="bold")
                progress.console.print(lines.row(m), highlight=False, markup=False)

        run = lab_train(cfg, store=db, on_step=on_step, on_epoch=on_epoch)
    if json_:
        print_json(
            {
                "id": run.id,
                "status": run.status,
                "config": cfg.to_dict(),
                "metrics": run.metrics,
                "summary": run.summary(),
                "store": str(Path(store)),
            }
        )
    else:
        _print_run_footer(run, store)
    if run.status == "diverged":
        raise typer.Exit(DIVERGED_EXIT)


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
        console.print(
            "echo state network: the reservoir is fixed and the readout solved in closed form, "
            "so no gradient flows and there is nothing to watch",
            highlight=False,
        )
    if run.status == "diverged":
        console.print(f"[red]the run diverged: {markup_safe(run.error or 'a non-finite loss')}[/]", highlight=False)
    console.print(
        f"run {run.id} ({run.status}) stored in {markup_safe(store)}; see it again with `gradwatch show {run.id}`",
        highlight=False,
    )


def time_grad_line(norms: list[float], when: str) -> str:
    """‖∂L/∂h_t‖ from the last step back to the first, in a few numbers (the fading picture of “The Vanishing
    Gradient Problem”)."""
    t = len(norms)
    picks = sorted({t - 1, (3 * t) // 4, t // 2, t // 4, 0}, reverse=True)
    body = ", ".join(f"t={i + 1}: {fmt_sci(norms[i])}" for i in picks)
    return f"‖∂L/∂h_t‖ of the first recurrent layer {when}: {body}"


def _train_command() -> Any:
    def command(**kwargs: Any) -> None:
        _train(**kwargs)

    extra = [
        inspect.Parameter("store", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=store_option()),
        inspect.Parameter(
            "json_",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(False, "--json", help="Print the run as JSON on stdout."),
        ),
    ]
    command.__signature__ = inspect.Signature(config_parameters() + extra)  # type: ignore[attr-defined]
    command.__doc__ = (
        "Train a network from the lectures (default: a 3×100 ReLU MLP with He init on digits, Adam, "
        "10 epochs), watch its gradients, store the run."
    )
    return command


def _runs(
    store: str = store_option(),
    limit: int = typer.Option(20, help="Show at most this many runs, newest first."),
    json_: bool = typer.Option(False, "--json", help="Print the runs as JSON on stdout."),
) -> None:
    """List the stored runs, newest first."""
    from gradwatch.cli.runs import watched_row
    from gradwatch.store.watched import is_watched

    if limit < 1:
        raise ConfigError("limit", limit, "expected ≥ 1 runs to show")
    if not Path(store).expanduser().exists():  # nothing trained here yet: not an error
        if json_:
            print_json([])
        else:
            console.print(f"no runs yet in {markup_safe(store)}: `gradwatch train` makes one", highlight=False)
        return
    with open_store(store, must_exist=True) as db:
        rows = db.runs(limit=limit)
    if json_:
        print_json(rows)
        return
    table = Table(
        title=plain(f"runs in {store}"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    # The id comes first and is never cut: it is what `gradwatch show` takes. The other columns wrap.
    table.add_column("id", no_wrap=True, min_width=max([len(r["id"]) for r in rows], default=2))
    for col in ("status", "network and data", "epochs", "test acc"):
        table.add_column(col, justify="right" if col in ("epochs", "test acc") else "left", overflow="fold")
    for r in rows:
        c, s = r["config"], r["summary"]
        if is_watched(r):  # a watched run of the user's own model
            w = watched_row(r)
            table.add_row(
                plain(r["id"]),
                plain(r["status"]),
                plain(f"{w['model']} {w['net']}"),
                plain(w["epochs"]),
                plain(w["acc"]),
            )
            continue
        if "experiment" in c:  # a `gradwatch lab all` record of a whole experiment
            table.add_row(plain(r["id"]), plain(r["status"]), plain(f"lab {c['experiment']}"), "", "")
            continue
        net = (
            f"{c.get('model')} {c['sizes']}"
            if c.get("sizes") is not None
            else f"{c.get('model')} {c.get('depth')}×{c.get('width')}"
        )
        net += f" {c.get('activation', '')} {c.get('init', '')} on {c.get('dataset', '')}"
        acc = s.get("test_accuracy")
        table.add_row(
            plain(r["id"]),
            plain(r["status"]),
            plain(net),
            plain(s.get("epoch", "")),
            "" if not isinstance(acc, (int, float)) else f"{acc:.3f}",
            style="red" if r["status"] in ("diverged", "failed") else None,
        )
    console.print(table)
    if not rows:
        console.print("no runs yet: `gradwatch train` makes one")


def _show(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix), from `gradwatch runs`."),
    store: str = store_option(),
    json_: bool = typer.Option(False, "--json", help="Print the run as JSON on stdout."),
) -> None:
    """Show one stored run: its config, metrics per epoch and per-layer gradient summary."""
    from gradwatch.lab.config import Config
    from gradwatch.store.watched import is_watched, load_history

    with open_store(store, must_exist=True) as db:
        run = db.get(run_id)
        metrics = db.metrics(run["id"])
        history = db.history(run["id"])
        times = db.time_grads(run["id"])
        watched = load_history(db, run["id"], stored=history) if is_watched(run) and not json_ else None
    if json_:
        print_json(
            {
                **run,
                "metrics": metrics,
                "history": {
                    "layers": history["layers"],
                    "steps": history["steps"].tolist(),
                    "stats": {k: v.tolist() for k, v in history["stats"].items()},
                },
                "time_grads": {str(k): v.tolist() for k, v in times.items()},
            }
        )
        return
    if is_watched(run):
        from gradwatch.cli.runs import show_watched

        show_watched(run, watched)
        return
    defaults = Config().to_dict()
    changed = {k: v for k, v in run["config"].items() if defaults.get(k) != v}
    console.print(
        f"[bold]run {markup_safe(run['id'])}[/] — {markup_safe(run['status'])}; gradwatch "
        f"{markup_safe(run['gradwatch_version'])}, torch {markup_safe(run['torch_version'])}",
        highlight=False,
    )
    console.print(
        plain("config (non-default): " + (", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults")),
        highlight=False,
    )
    if run.get("error"):
        console.print(f"[red]error:[/] {markup_safe(run['error'])}", highlight=False)
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
        from gradwatch.report.rewrap import rewrap

        console.print(
            rewrap(clean(run["summary"]["diagnosis"], keep_newlines=True), console.width),
            style="green" if run["summary"].get("healthy") else "yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )  # wrapped once, here, to this terminal's width
    for epoch, norms in sorted(times.items())[:1] + sorted(times.items())[-1:]:
        console.print(time_grad_line(norms.tolist(), f"at the start of epoch {epoch}"), highlight=False)


def _compact(v: Any) -> str:
    """At most 8 characters: 4 significant digits in [0.01, 10⁴), else 2 in scientific notation."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return ""
    if v == 0 or not math.isfinite(v) or 1e-2 <= abs(v) < 1e4:
        return f"{v:.4g}"
    return f"{v:.1e}"


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.4g}"


def register_train(app: typer.Typer) -> None:
    """Add ``train``, ``runs`` and ``show`` to the ``gradwatch`` app."""
    app.command("train", help=_train_command().__doc__)(_train_command())
    app.command("runs")(_runs)
    app.command("show")(_show)

"""``gradwatch lab``: run the catalogue of the lectures' experiments.

One command per experiment, generated from the experiment's config class: every config field becomes a flag
with the same name (dashes for underscores), plus ``--out DIR`` and ``--json``. ``gradwatch lab all`` runs
the whole catalogue and writes an index page.
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic_core import PydanticUndefined

from gradwatch.cli.common import console, err_console, out_dir, print_json
from gradwatch.lab import experiments
from gradwatch.report.safe_text import markup_safe
from gradwatch.sources import cite
from gradwatch.store.sqlite import DEFAULT_STORE

lab_app = typer.Typer(
    help="Reproduce the experiments of the five lectures on why deep networks are hard to train.", no_args_is_help=True
)


DOWNLOAD_HELP = "Download MNIST into the cache when its files are not found (or set GRADWATCH_DOWNLOAD=1)."


@contextmanager
def downloads_allowed(allow: bool):
    """Inside the block, MNIST may be downloaded (``GRADWATCH_DOWNLOAD=1``) when ``allow``; restored after."""
    from gradwatch.lab.mnist import DOWNLOAD_ENV

    before = os.environ.get(DOWNLOAD_ENV)
    if allow:
        os.environ[DOWNLOAD_ENV] = "1"
    try:
        yield
    finally:
        if allow and before is None:
            os.environ.pop(DOWNLOAD_ENV, None)
        elif allow and before is not None:
            os.environ[DOWNLOAD_ENV] = before


class RichProgress:
    """Progress bars on stderr (so ``--json`` output stays clean); transient, one per loop."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def track(self, items, description: str, total: int | None = None):
        if not self.enabled:
            yield from items
            return
        from rich.progress import track

        yield from track(items, description=description, total=total, console=err_console, transient=True)


def _typer_annotation(ann: Any) -> Any:
    """typer understands Optional[X] but not every PEP 604 union: normalise ``X | None``."""
    if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return Optional[args[0]] if len(args) == 1 else str
    return ann


def _show(result) -> None:
    from gradwatch.report.terminal import plain_table

    console.print(f"[bold]{result.name}[/] — {markup_safe(result.claim)}", highlight=False)
    for t in result.tables:
        console.print(f"[dim]{markup_safe(t.title)}[/]", highlight=False)
        console.print(plain_table("", t.columns, t.rows))
    mark = "[green]✓ claim supported[/]" if result.holds else "[red]✗ claim not supported in this run[/]"
    console.print(f"{mark}: {markup_safe(result.evidence)}", highlight=False)


def run_and_report(
    name: str,
    options: dict[str, Any],
    out: str | None,
    as_json: bool,
    index_href: str | None = None,
    quiet: bool = False,
):
    """Run one experiment with CLI options, print it (table or JSON) and write its files to ``out``."""
    from gradwatch.report.experiment_files import json_payload, write_experiment

    exp = experiments.get(name)
    cfg = exp.config(**options)  # validate before any work
    target = out_dir(out)
    result = exp(RichProgress(enabled=not (as_json or quiet)), **cfg.model_dump())
    if target is not None:
        paths = write_experiment(result, target, index_href)
    if quiet:
        return result
    if as_json:
        print_json(json_payload(result))
    else:
        _show(result)
        if target is not None:
            console.print("wrote " + ", ".join(markup_safe(p) for p in paths.values()), highlight=False)
    return result


def _make_command(name: str):
    exp = experiments.get(name)
    params = []
    for field_name, f in exp.config.model_fields.items():
        default = None if f.default is PydanticUndefined else f.default
        flag = "--" + field_name.replace("_", "-")
        params.append(
            inspect.Parameter(
                field_name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_typer_annotation(f.annotation),
                default=typer.Option(
                    default, flag, help=markup_safe(cite(f.description or "")), show_default=default is not None
                ),
            )
        )
    params.append(
        inspect.Parameter(
            "out",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Optional[str],
            default=typer.Option(None, "--out", help="Write PNG plots, JSON and an HTML page here."),
        )
    )
    params.append(
        inspect.Parameter(
            "json_",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(False, "--json", help="Print every number as JSON on stdout."),
        )
    )
    if "dataset" in exp.config.model_fields:
        params.append(
            inspect.Parameter(
                "download",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=bool,
                default=typer.Option(False, "--download", help=DOWNLOAD_HELP),
            )
        )

    def command(**kwargs: Any) -> None:
        out, as_json = kwargs.pop("out"), kwargs.pop("json_")
        with downloads_allowed(kwargs.pop("download", False)):
            run_and_report(name, kwargs, out, as_json)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # what typer reads
    command.__name__ = name.replace("-", "_")
    command.__doc__ = markup_safe(cite(f"{exp.summary} (seed {exp.seeds})"))
    return command


for _name in experiments.NAMES:
    lab_app.command(name=_name)(_make_command(_name))


@lab_app.callback(invoke_without_command=True)
def _lab(
    ctx: typer.Context, list_: bool = typer.Option(False, "--list", help="List the experiments with one line each.")
) -> None:
    """Reproduce the experiments of the five lectures on why deep networks are hard to train."""
    if list_:
        for name in experiments.NAMES:
            exp = experiments.get(name)
            console.print(
                f"[bold]{name:<18}[/] {markup_safe(cite(f'{exp.summary} (seed {exp.seeds})'))}", highlight=False
            )
        raise typer.Exit()


def experiment_key(name: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(run key, config) of one catalogue experiment in the run store: its name and validated options; where its
    runs are stored is no part of what it computes, so ``store`` is left out."""
    from gradwatch.store.keys import config_key

    cfg = {"experiment": name, **experiments.get(name).config(**options).to_dict()}
    cfg.pop("store", None)
    return config_key(cfg), cfg


def _selection(only: str | None) -> list[str]:
    if only is None:
        return list(experiments.NAMES)
    from gradwatch.errors import check_choice

    return [check_choice("only", n.strip(), experiments.NAMES) for n in only.split(",") if n.strip()]


def _run_keyed(name: str, options: dict[str, Any], db: Any, out: str | None, json_: bool):
    """Run one experiment recorded in the store under its key (running → completed / failed / interrupted)."""
    from gradwatch.lab.run import new_run_id

    key, cfg = experiment_key(name, options)
    run_id = new_run_id()
    db.start_run(run_id, cfg, key=key, replace=True)  # one record per key, even if this run is killed
    try:
        result = run_and_report(name, options, out, False, index_href="index.html", quiet=json_)
    except KeyboardInterrupt:
        db.finish_run(run_id, "interrupted", error="KeyboardInterrupt")
        raise
    except Exception as exc:
        db.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    from gradwatch.report.experiment_files import json_payload

    db.finish_run(run_id, "completed", summary=json_payload(result))
    db.keep_only(key, run_id)  # after --force: the new record replaces the old one
    return result


def _stored_result(payload: dict[str, Any], target: Path | None):
    """A completed experiment read back from the store: what the summary line and the index page need (its
    pictures are those already in ``--out``)."""
    from types import SimpleNamespace

    from gradwatch.report.experiment_files import figure_filename

    figures = {
        k: None
        for k in payload.get("figures", [])
        if target is not None and (target / figure_filename(payload["name"], k)).exists()
    }
    return SimpleNamespace(
        name=payload["name"],
        claim=payload["claim"],
        holds=payload["holds"],
        seconds=payload.get("seconds", 0.0),
        figures=figures,
        payload=payload,
    )


@lab_app.command(name="all")
def run_all(
    quick: bool = typer.Option(False, "--quick", help="CI-sized runs."),
    seed: int = typer.Option(0, help="Seed passed to every experiment."),
    out: str | None = typer.Option(None, help="Write every experiment's files and index.html here."),
    json_: bool = typer.Option(False, "--json", help="Print all results as one JSON object."),
    store: str = typer.Option(
        str(DEFAULT_STORE),
        "--store",
        help="Run store: experiments' runs, and which experiments are done (re-runs skip them).",
    ),
    force: bool = typer.Option(False, "--force", help="Run every experiment again, even those completed."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated experiments to run (default: all)."),
) -> None:
    """Run the whole catalogue (and, with --out, write a gallery index.html). Resumable: an experiment completed
    with the same options in --store is skipped (its stored result reported) unless --force."""
    from types import SimpleNamespace

    from gradwatch.report.experiment_files import json_payload, write_index
    from gradwatch.store import RunStore

    names = _selection(only)
    target = out_dir(out)
    results, skipped = [], 0
    with RunStore(store) as db:
        for name in names:
            options: dict[str, Any] = {"quick": quick, "seed": seed}
            if "store" in experiments.get(name).config.model_fields:
                options["store"] = store
            key, _ = experiment_key(name, options)
            done = None if force else db.completed([key]).get(key)
            if done and target is not None and not (target / f"{name}.json").exists():
                done = None  # completed, but its files are not in this --out: run it again to write them
            if not json_:
                console.rule(name + (" (completed before: skipped)" if done else ""))
            if done:
                skipped += 1
                results.append(_stored_result(done["summary"], target))
                continue
            results.append(_run_keyed(name, options, db, out, json_))
    if json_:
        print_json({r.name: r.payload if isinstance(r, SimpleNamespace) else json_payload(r) for r in results})
    if target is not None:
        index = write_index(Path(target), results)
        if not json_:
            console.print(f"gallery: {markup_safe(index)}", highlight=False)
    if not json_:
        held = sum(r.holds for r in results)
        console.print(
            f"{held}/{len(results)} claims supported; {sum(r.seconds for r in results):.0f} s in all"
            + (f"; {skipped} completed before, skipped (--force runs them again)" if skipped else ""),
            highlight=False,
        )

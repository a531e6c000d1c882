"""The generated pages of the docs (used by the MkDocs hook ``generate.py`` and by the tests)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

from gradwatch.sources import cite

GALLERY = Path(__file__).resolve().parents[1] / "gallery"


def experiment_names() -> list[str]:
    from gradwatch.lab import experiments

    return list(experiments.NAMES)


def generated_pages() -> dict[str, str]:
    """{path under docs/: Markdown} of every generated page."""
    out = {"cli.md": cli_reference()}
    out.update({f"lab/{name}.md": experiment_page(name) for name in experiment_names()})
    return out


# --- docstrings to Markdown ------------------------------------------------------------------------------------
_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|obj):`~?([^`]+)`")


def rst_to_md(text: str) -> str:
    """The few reStructuredText forms the docstrings use: ``code``, :func:`x` roles."""
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _cell(value: Any) -> str:
    text = "" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# --- one page per experiment -----------------------------------------------------------------------------------
def experiment_page(name: str) -> str:
    from gradwatch.lab import experiments

    exp = experiments.get(name)
    module = importlib.import_module(experiments._module(name))
    doc = rst_to_md(module.__doc__ or "").strip()
    title, _, body = doc.partition("\n")
    parts = [f"# {name}", "", f"**Claim.** {exp.claim}", "",
             f"From: {cite(f'(seed {exp.seeds})')[1:-1]} ([the lectures](../sources.md)). {exp.summary}", "",
             "```bash", f"gradwatch lab {name} --quick        # CI-sized, on the embedded digits",
             f"gradwatch lab {name} --out DIR     # full size; PNGs, JSON and an HTML page in DIR", "```", ""]
    if (GALLERY / f"{name}.png").is_file():
        parts += [f"![{name}](../gallery/{name}.png)", ""]
    parts += ["## Setup, and how it differs from the paper", "", title, "", body.strip(), ""]
    parts += _numbers(name)
    fields = exp.config.model_fields
    rows = [[f"`--{k.replace('_', '-')}`", "" if f.default is None else f"`{f.default}`", rst_to_md(f.description or "")]
            for k, f in fields.items()]
    parts += ["## Options", "", _table(["flag", "default", "meaning"], rows), ""]
    return "\n".join(parts)


def _numbers(name: str) -> list[str]:
    path = GALLERY / f"{name}.json"
    if not path.is_file():
        return ["## Numbers", "", "Not measured yet: run `gradwatch lab all --quick --out DIR` and "
                "`python docs/gallery.py DIR`.", ""]
    r = json.loads(path.read_text(encoding="utf-8"))
    verdict = "supported" if r["holds"] else "**not supported**"
    parts = ["## Numbers", "",
             f"Quick mode, seed 0, on the embedded digits (`gradwatch lab all --quick --out DIR`): the claim is "
             f"{verdict}.", "",
             f"> {r['evidence']}", ""]
    for t in r.get("tables", []):
        parts += [f"**{_cell(t['title'])}**", "", _table(t["columns"], t["rows"]), ""]
    if not r["holds"]:
        parts += ["## What did not reproduce", "",
                  "The claim above is not supported by this run: the evidence sentence says what was measured "
                  "instead, and the setup section says what was tried. The experiment reports the measured "
                  "result; it is not tuned until the claim holds.", ""]
    return parts


# --- the CLI reference -----------------------------------------------------------------------------------------
def cli_reference() -> str:
    """Every command of the typer app: usage, help and options, read from the app itself."""
    import typer

    from gradwatch.cli import app

    root = typer.main.get_command(app)
    parts = ["# CLI reference", "",
             "Generated from the `gradwatch` command itself when the docs are built. "
             "`gradwatch COMMAND --help` prints the same in a terminal.", "",
             "Exit codes: 0 success, 1 a file-system or data problem (missing, unreadable or read-only file, "
             "corrupt MNIST), 2 a bad option (the one-line message names the option, the value and what is "
             "allowed), 3 `gradwatch train` stored a run that diverged to a non-finite loss.", ""]

    def walk(cmd: Any, path: list[str]) -> None:  # a click command (typer may vendor its own click)
        ctx = cmd.context_class(cmd, info_name=" ".join(path))
        if path[1:]:
            parts.extend([f"{'#' * min(len(path), 4)} `{' '.join(path)}`", ""])
            help_text = (cmd.help or "").split("\f")[0].strip()
            parts.extend([help_text, "", "```text", cmd.get_usage(ctx).strip(), "```", ""])
            rows = []
            for p in cmd.get_params(ctx):
                record = p.get_help_record(ctx)
                if record is None:
                    continue
                flags, help_ = record
                rows.append([f"`{flags}`", help_])
            if rows:
                parts.extend([_table(["option", "meaning"], rows), ""])
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])

    walk(root, ["gradwatch"])
    return "\n".join(parts)

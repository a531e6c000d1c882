"""How far ``diagnose()`` can be trusted: run the labelled zoo (benchmarks/zoo/), diagnose every run and score it.

Prints, per kind, precision and recall over the zoo; the accuracy of the first layer and of the step wherever the
truth knows them; the false findings on healthy runs; and each scenario's verdict. Exits 1 when a target of
issue 9 is missed (any false finding on a healthy run, recall below 0.9 for a kind, a wrong first layer or step
where the truth is known, a scenario that did not run), 2 on a usage error.

    PYTHONPATH=src python benchmarks/diagnosis.py [--only NAME[,NAME…]] [--json FILE|-] [--list]

The Hugging Face scenarios need ``transformers`` (``pip install "gradwatch[zoo]"``); without it they are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from zoo import SCENARIOS, summarise  # noqa: E402
from zoo.runner import judge  # noqa: E402


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def select(only: str | None) -> list[str]:
    """Scenario names from ``--only`` (comma separated), all of them by default."""
    if not only:
        return list(SCENARIOS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"--only: unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return names


def run_all(names: list[str], console: Console) -> list:
    verdicts = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("zoo", total=len(names))
        for name in names:
            progress.update(task, description=f"[bold]{name}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                verdict, _ = judge(SCENARIOS[name])
            verdicts.append(verdict)
            mark = ("[yellow]skip" if verdict.skipped else "[green]pass" if verdict.passed else
                    "[magenta]error" if verdict.error else "[red]FAIL")
            progress.console.print(f"{mark}[/] {name} ({verdict.facts.get('seconds', 0):.1f} s)")
            progress.advance(task)
    return verdicts


def print_report(verdicts: list, summary: dict, console: Console) -> None:
    kinds = Table(title="per kind, over the zoo")
    for col in ("kind", "expected", "found", "missed", "false", "precision", "recall"):
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    for kind, k in summary["kinds"].items():
        kinds.add_row(kind, str(k["tp"] + k["fn"]), str(k["tp"]), str(k["fn"]), str(k["fp"]), _pct(k["precision"]),
                      _pct(k["recall"]))
    console.print(kinds)
    la, sa = summary["layer_accuracy"], summary["step_accuracy"]
    console.print(f"first layer right: {la['right']} of {la['known']} ({_pct(la['accuracy'])}); "
                  f"step right: {sa['right']} of {sa['known']} ({_pct(sa['accuracy'])})")
    false = summary["healthy_false_findings"]
    console.print(f"false findings on healthy runs: {len(false)}")
    for f in false:
        layers = ", ".join(f["layers"][:4]) + ("…" if len(f["layers"]) > 4 else "")
        console.print(f"  {f['scenario']}: {f['kind']} in {layers} (step {f['step']})", markup=False)
    table = Table(title="scenarios")
    for col in ("scenario", "verdict", "problems"):
        table.add_column(col)
    for v in verdicts:
        state = ("[yellow]skipped" if v.skipped else "[green]pass" if v.passed else
                 "[magenta]error" if v.error else "[red]fail")
        table.add_row(v.name, state, escape("; ".join(v.problems())))
    console.print(table)
    for target, met in summary["targets"].items():
        console.print(f"{'[green]met' if met else '[red]MISSED'}[/]  {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only these scenarios (comma separated names)")
    parser.add_argument("--json", metavar="FILE", help="also write the verdicts and summary as JSON ('-': stdout)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    console = Console(stderr=args.json == "-")
    if args.list:
        table = Table("scenario", "expects", "what it is")
        for name, sc in SCENARIOS.items():
            table.add_row(name, ", ".join(sc.expects) or "healthy", escape(sc.doc))
        console.print(table)
        return 0
    try:
        names = select(args.only)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    verdicts = run_all(names, console)
    summary = summarise(verdicts)
    print_report(verdicts, summary, console)
    if args.json:
        payload = json.dumps({"summary": summary, "scenarios": [v.to_dict() for v in verdicts]}, indent=1)
        if args.json == "-":
            print(payload)
        else:
            Path(args.json).write_text(payload)
    return 0 if summary["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

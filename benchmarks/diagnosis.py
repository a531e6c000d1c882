"""How far ``diagnose()`` can be trusted: run the labelled zoo (benchmarks/zoo/), diagnose every run and score it.

The zoo has two parts, reported apart: "train" (the scenarios the rules were tuned on) and "held-out" (never
tuned on). For each part it prints, per kind, precision and recall; the accuracy of the first layer and of the
step wherever the truth knows them; the false findings on healthy runs; then each scenario's verdict. Exits 1
when a target is missed — train: any false finding on a healthy run, recall below 0.9 for a kind, a wrong first
layer or step where the truth is known; held-out: any false finding on a healthy run, precision or recall below
0.95 for a kind, first layer or step right on fewer than 95 % of the broken runs that know them; either: a
scenario that did not run —, 2 on a usage error.

    PYTHONPATH=src python benchmarks/diagnosis.py [--only NAME[,NAME…]] [--split train|held-out] [--json FILE|-]
                                                  [--list]

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

from zoo import SCENARIOS, summarise_parts  # noqa: E402
from zoo.runner import judge  # noqa: E402


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def select(only: str | None, split: str | None = None) -> list[str]:
    """Scenario names from ``--only`` (comma separated) and ``--split``, all of them by default."""
    if not only:
        return [n for n, sc in SCENARIOS.items() if split is None or sc.split == split]
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


def print_part(part: str, summary: dict, console: Console) -> None:
    kinds = Table(title=f"per kind, {part} part of the zoo")
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
    for target, met in summary["targets"].items():
        console.print(f"{'[green]met' if met else '[red]MISSED'}[/]  {part}: {target}")


def print_report(verdicts: list, parts: dict, console: Console) -> None:
    table = Table(title="scenarios")
    for col in ("scenario", "part", "verdict", "problems"):
        table.add_column(col)
    for v in verdicts:
        state = ("[yellow]skipped" if v.skipped else "[green]pass" if v.passed else
                 "[magenta]error" if v.error else "[red]fail")
        table.add_row(v.name, v.split, state, escape("; ".join(v.problems())))
    console.print(table)
    for part, summary in parts.items():
        print_part(part, summary, console)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only these scenarios (comma separated names)")
    parser.add_argument("--split", choices=("train", "held-out"), help="run only this part of the zoo")
    parser.add_argument("--json", metavar="FILE", help="also write the verdicts and summary as JSON ('-': stdout)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    console = Console(stderr=args.json == "-")
    if args.list:
        table = Table("scenario", "part", "expects", "what it is")
        for name, sc in SCENARIOS.items():
            table.add_row(name, sc.split, ", ".join(sc.expects) or "healthy", escape(sc.doc))
        console.print(table)
        return 0
    try:
        names = select(args.only, args.split)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    verdicts = run_all(names, console)
    parts = summarise_parts(verdicts)
    print_report(verdicts, parts, console)
    if args.json:
        payload = json.dumps({"summary": parts, "scenarios": [v.to_dict() for v in verdicts]}, indent=1)
        if args.json == "-":
            print(payload)
        else:
            Path(args.json).write_text(payload)
    return 0 if all(p["targets_met"] for p in parts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

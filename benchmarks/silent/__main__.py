"""Run every reproduced silent bug and the healthy zoo; print, per bug, whether and at which step it was found,
and the silent-bug findings on every healthy run. Exits 1 when fewer than ``NEED`` bugs are found or a healthy
run gets a silent-bug finding.

    PYTHONPATH=src python benchmarks/silent [--only NAME[,NAME…]] [--no-zoo] [--json FILE]

Each bug runs for its first observable step + ``WITHIN`` + 1 optimizer steps, so a finding counts only if the watch
could have made it within ``WITHIN`` steps. The Hugging Face bugs need ``transformers``; the DDP bugs need
torch.distributed with gloo.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "src"))
sys.path.insert(0, str(HERE.parent))

from silent import BUGS
from silent.judge import WITHIN, Detection, judge, silent_false

NEED = 18  # bugs that must be found


def run_bugs(names: list[str]) -> list[Detection]:
    out = []
    for name in names:
        b = BUGS[name]
        if b.missing():
            print(f"skip  {name}: needs {', '.join(b.missing())}")
            continue
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                truth, case = b.run(b.step + WITHIN + 1)
            d = judge(name, truth, case.findings)
        except Exception as exc:  # noqa: BLE001 - a bug that crashes is reported, the benchmark goes on
            d = Detection(name, b.kind, b.step, False, why=f"{type(exc).__name__}: {exc}")
        mark = "found" if d.detected else "MISSED"
        at = f"at step {d.step}" if d.step is not None else "–"
        print(f"{mark:6} {name:42} {d.kind:19} observable at {d.truth_step:2}, {at:11} "
              f"({time.perf_counter() - start:.1f} s){'  ' + d.why if d.why else ''}")
        out.append(d)
    return out


def run_zoo() -> dict[str, list[str]]:
    from zoo import SCENARIOS
    from zoo.runner import judge as zoo_judge

    false = {}
    for name, scenario in SCENARIOS.items():
        if scenario.expects:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            verdict, run = zoo_judge(scenario)
        if run is None:
            print(f"zoo   {name}: not run ({verdict.skipped or verdict.error})")
            continue
        found = silent_false([f.to_dict() for f in run.diagnosis.findings])
        # a scenario built with a silent bug in it (a head replaced after the optimizer was built) must show that
        # one and no other; every other healthy run none
        kinds = [k for k in found if k not in scenario.silent] + [
            f"{k} missed" for k in scenario.silent if k not in found
        ]
        false[name] = kinds
        carried = f" (carries {', '.join(scenario.silent)}: found)" if scenario.silent and not kinds else ""
        print(f"zoo   {name:32} silent-bug findings: {', '.join(kinds) if kinds else 'none'}{carried}")
    return false


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/silent", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated bug names")
    p.add_argument("--no-zoo", action="store_true", help="skip the healthy zoo runs")
    p.add_argument("--json", help="write the results to this file")
    p.add_argument("--list", action="store_true", help="list the bugs and their sources")
    args = p.parse_args(argv)
    if args.list:
        for name, b in BUGS.items():
            print(f"{name} [{b.kind}, observable at step {b.step}]\n    {b.source}")
        return 0
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BUGS)
    unknown = [n for n in names if n not in BUGS]
    if unknown:
        print(f"--only: unknown bug(s) {', '.join(unknown)}; known: {', '.join(BUGS)}", file=sys.stderr)
        return 2
    detections = run_bugs(names)
    found = sum(d.detected for d in detections)
    print(f"\nfound {found} of {len(detections)} bugs within {WITHIN} optimizer steps of being observable, with the "
          "right layers")
    false = {} if args.no_zoo else run_zoo()
    n_false = sum(len(k) for k in false.values())
    if not args.no_zoo:
        print(f"silent-bug findings on {len(false)} healthy zoo runs: {n_false}")
    if args.json:
        Path(args.json).write_text(json.dumps({"bugs": [vars(d) for d in detections], "healthy_zoo": false},
                                              indent=1, default=list))
    ok = (found >= min(NEED, len(detections)) if args.only else found >= NEED) and n_false == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

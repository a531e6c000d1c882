"""Refresh the gallery from a `gradwatch lab all --out DIR` folder: copy each experiment's main picture into
docs/gallery/, save its claim, verdict, evidence and tables as docs/gallery/NAME.json (the numbers of the
experiment's docs page), and print the README's gallery table.

    gradwatch lab all --quick --out DIR
    python docs/gallery.py DIR > gallery.md
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from gradwatch.lab import experiments
from gradwatch.sources import cite

KEPT = ("name", "claim", "holds", "evidence", "tables", "config", "seconds")  # what the docs pages show


def main(source: str) -> None:
    src, dest = Path(source), Path(__file__).parent / "gallery"
    dest.mkdir(exist_ok=True)
    print("| picture | experiment | claim | quick run |")
    print("|---|---|---|---|")
    for name in experiments.NAMES:
        result = json.loads((src / f"{name}.json").read_text())
        shutil.copyfile(src / f"{name}.png", dest / f"{name}.png")
        kept = {k: result[k] for k in KEPT if k in result}
        if isinstance(kept.get("config"), dict) and kept["config"].get("store"):  # a path of the machine it ran on
            kept["config"] = {**kept["config"], "store": Path(kept["config"]["store"]).name}
        (dest / f"{name}.json").write_text(json.dumps(kept, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        verdict = "✓ supported" if result["holds"] else "✗ not supported"
        seeds, claim = experiments.get(name).seeds, result["claim"].replace("|", "\\|")  # | would end the cell
        print(f'| <img src="docs/gallery/{name}.png" width="320"> | `{name}` {cite(f"(seed {seeds})")} '
              f"| {claim} | {verdict} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

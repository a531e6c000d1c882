"""Write the README's gallery: copy each experiment's main picture from a `gradwatch lab all` output folder into
docs/gallery/ and print the Markdown table (picture, claim, verdict) to paste under `## Gallery`.

    gradwatch lab all --out /tmp/gallery            # or --quick
    python docs/gallery.py /tmp/gallery > /tmp/gallery.md
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from gradwatch.lab import experiments


def main(source: str) -> None:
    src, dest = Path(source), Path(__file__).parent / "gallery"
    dest.mkdir(exist_ok=True)
    print("| picture | experiment | claim | this run |")
    print("|---|---|---|---|")
    for name in experiments.NAMES:
        result = json.loads((src / f"{name}.json").read_text())
        shutil.copyfile(src / f"{name}.png", dest / f"{name}.png")
        verdict = "✓ supported" if result["holds"] else "✗ not supported"
        seeds, claim = experiments.get(name).seeds, result["claim"].replace("|", "\\|")  # | would end the cell
        print(f'| <img src="docs/gallery/{name}.png" width="320"> | `{name}` ({seeds}) | {claim} '
              f"| {verdict} ({result['seconds']:.0f} s) |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

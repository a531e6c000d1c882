"""Write an experiment's outputs to a directory: ``NAME.json``, its PNGs and a self-contained ``NAME.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradwatch.report.html import experiment_page, index_page


def figure_filename(name: str, key: str) -> str:
    """The figure called ``main`` is ``NAME.png``; any other is ``NAME-KEY.png``."""
    return f"{name}.png" if key == "main" else f"{name}-{key}.png"


def json_payload(result) -> dict[str, Any]:
    """Every number at the top level, then what the run was: the JSON of ``--json`` and of ``NAME.json``."""
    d = result.to_dict()
    numbers = d.pop("numbers")
    return {**numbers, **d}


def write_experiment(result, out: Path, index_href: str | None = None) -> dict[str, Path]:
    """Write JSON, PNGs and HTML for ``result`` into ``out``; returns {kind: path}."""
    from gradwatch.io import write_json

    out.mkdir(parents=True, exist_ok=True)
    images = {key: fig.save(out / figure_filename(result.name, key)) for key, fig in result.figures.items()}
    paths = {"json": write_json(out / f"{result.name}.json", json_payload(result))}
    page = out / f"{result.name}.html"
    page.write_text(experiment_page(result.to_dict(), images, index_href), encoding="utf-8")
    paths["html"] = page
    paths.update({f"png:{k}": p for k, p in images.items()})
    return paths


def write_index(out: Path, results: list) -> Path:
    entries = []
    for r in results:
        thumb = out / figure_filename(r.name, "main") if "main" in r.figures else None
        if thumb is None and r.figures:
            thumb = out / figure_filename(r.name, sorted(r.figures)[0])
        entries.append({"name": r.name, "claim": r.claim, "holds": r.holds, "href": f"{r.name}.html", "thumb": thumb})
    path = out / "index.html"
    path.write_text(index_page(entries), encoding="utf-8")
    return path

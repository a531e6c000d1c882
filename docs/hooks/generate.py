"""MkDocs hook: pages generated from the code at build time, so they cannot drift from it.

- ``cli.md``: the reference of every ``gradwatch`` command, read from the typer app (usage, help, options).
- ``lab/NAME.md``: one page per experiment of the catalogue, from the experiment's own metadata (claim, seeds,
  the module docstring with its setup and deviations, the config fields) and the numbers of the quick run saved
  beside its picture in ``docs/gallery/NAME.json``.
- the nav gets the pages other parts of the project add (watch, diagnosis, integrations, live dashboard, sweeps)
  when their files exist.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pages  # noqa: E402

OPTIONAL_PAGES = [  # (nav title, file under docs/), placed after "Getting started" when the file exists
    ("Watch", "watch.md"), ("Diagnosis", "diagnosis.md"), ("Integrations", "integrations.md"),
    ("Live dashboard", "serve.md"), ("Sweeps", "sweep.md"),
]


def on_config(config, **kwargs):
    docs = Path(config["docs_dir"])
    nav = config["nav"]
    at = next((i + 1 for i, item in enumerate(nav) if "Getting started" in item), len(nav))
    for title, name in reversed(OPTIONAL_PAGES):
        if (docs / name).is_file() and not any(name in item.values() for item in nav):
            nav.insert(at, {title: name})
    for item in nav:  # the lab's section: its index, then one generated page per experiment
        if "The lab" in item:
            item["The lab"] = ["lab/index.md"] + [{name: f"lab/{name}.md"} for name in pages.experiment_names()]
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    for path, text in pages.generated_pages().items():
        files.append(File.generated(config, path, content=text))
    return files


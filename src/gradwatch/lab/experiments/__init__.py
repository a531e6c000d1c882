"""The catalogue: the seeds' experiments, one module each, each defining ``EXPERIMENT``.

``get(name)`` imports an experiment's module on demand; ``NAMES`` lists them in teaching order.
"""

from __future__ import annotations

import importlib

from gradwatch.errors import check_choice

# name -> module (teaching order: the problem first, then explanations, then remedies)
MODULES: dict[str, str] = {
    "paralysis": "paralysis",
}
NAMES = list(MODULES)


def get(name: str):
    """The :class:`~gradwatch.lab.experiments.base.Experiment` called ``name``."""
    check_choice("experiment", name, MODULES)
    return importlib.import_module(f"gradwatch.lab.experiments.{MODULES[name]}").EXPERIMENT

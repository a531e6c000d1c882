"""The catalogue: the seeds' experiments, one module each, each defining ``EXPERIMENT``.

``ORDER`` is the teaching order (the problem first, then explanations, then remedies); an experiment is
available when its module exists (module name = experiment name with ``_`` for ``-``). ``get(name)`` imports
an experiment's module on demand; ``NAMES`` lists the available ones.
"""

from __future__ import annotations

import importlib
import importlib.util

from gradwatch.errors import check_choice

ORDER = [
    "paralysis",
    "learning-speed",
    "chain",
    "interval",
    "first-layer-image",
    "activations",
    "saturation",
    "init",
    "meanfield",
    "trainability",
    "batchnorm",
    "residual",
    "clipping",
    "rnn",
    "pretraining",
    "regularization",
    "preprocessing",
    "relu-vs-tanh",
]


def _module(name: str) -> str:
    return f"{__name__}.{name.replace('-', '_')}"


NAMES = [n for n in ORDER if importlib.util.find_spec(_module(n)) is not None]


def get(name: str):
    """The :class:`~gradwatch.lab.experiments.base.Experiment` called ``name``."""
    check_choice("experiment", name, NAMES)
    return importlib.import_module(_module(name)).EXPERIMENT

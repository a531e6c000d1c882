"""``WandB(...)``: a watch's per-layer metrics, log10|g| histograms and diagnosis in a Weights & Biases run.

Written at flush time from the host rows, keys ``gradwatch/<stat>/<layer>``, the recorded step as W&B's
``step``, NaN and ±inf passed to ``wandb`` as they are (the W&B charts do not draw non-finite points, so
``gradwatch/nonfinite/<layer>`` — a count — is where a NaN shows). With many layers, pass ``stats`` to keep the
number of series small (W&B's UI slows down with several hundred). Histograms go in as ``wandb.Histogram``
built from the watch's bins; the diagnosis as the run summary ``gradwatch/diagnosis`` at close.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwatch.sinks.base import PREFIX, check_stats, diagnosis_text, step_metrics


def _wandb():
    try:
        import wandb
    except ImportError as exc:
        raise ImportError('the W&B sink needs wandb: pip install "gradwatch[wandb]"') from exc
    return wandb


class WandB:
    """Log a watch to W&B: into ``run`` (a ``wandb`` run object), else the current ``wandb.run``, else a new
    run made with ``wandb.init(**init)`` that the sink finishes at close. ``stats``: the statistics to log
    (default: every recorded one)."""

    def __init__(self, run: Any = None, *, stats: Sequence[str] | None = None, prefix: str = PREFIX,
                 **init: Any):
        wandb = _wandb()
        self.stats, self.prefix = check_stats(stats), prefix
        self._wandb = wandb
        self._own = run is None and wandb.run is None
        self.run = run if run is not None else (wandb.run or wandb.init(**init))
        self._hists: dict[int, dict[str, Any]] = {}  # histograms waiting for their step's scalars

    def write(self, history: Any, steps: np.ndarray, values: np.ndarray) -> None:
        # W&B wants each step logged once, in increasing order: a step's histograms go in with its scalars
        for step, row in step_metrics(history, steps, values, self.stats, self.prefix):
            self.run.log({**row, **self._hists.pop(step, {})}, step=step)

    def write_histograms(self, history: Any, steps: np.ndarray, counts: np.ndarray) -> None:
        edges = np.asarray(history.hist_edges, dtype=float)
        for step, per_layer in zip(np.asarray(steps).tolist(), counts):
            self._hists[int(step)] = {f"{self.prefix}/log10_abs_grad/{layer}":
                                      self._wandb.Histogram(np_histogram=(c, edges))
                                      for layer, c in zip(history.layers, per_layer) if c.sum() > 0}

    def close(self, diagnosis: Any) -> None:
        for step, row in sorted(self._hists.items()):  # histograms whose scalars were written earlier
            self.run.log(row, step=step)
        self._hists = {}
        self.run.summary[f"{self.prefix}/diagnosis"] = diagnosis_text(diagnosis)
        if self._own:
            self.run.finish()

"""``Wandb(...)``: a watch's per-layer metrics, log10|g| histograms and diagnosis in a Weights & Biases run.

Written at flush time from the host rows, keys ``gradwatch/<stat>/<layer>``, only the values measured at each
step (a statistic sampled every k steps appears every k steps; NaN and ±inf of a gradient as they are — the W&B
charts do not draw non-finite points, so ``gradwatch/nonfinite/<layer>`` — a count — is where a NaN shows).

Steps, as W&B's own integrations do it: the watch's step is logged as the metric ``gradwatch/step``, declared with
``run.define_metric`` as the x-axis of every ``gradwatch/*`` chart, and rows are logged without ``step=``. W&B
then never drops them (it drops rows whose ``step=`` is below the run's current step — what the user's own
per-step ``wandb.log`` calls make it, since the watch flushes its rows in batches). Log your own metrics
without ``step=`` too (or with a step metric of your own).

With many layers, pass ``stats`` to keep the number of series small (W&B's UI slows down with several hundred).
Histograms go in as ``wandb.Histogram`` built from the watch's bins (the regular bins; the zeros, the underflow,
the overflow and the NaN are counted apart, in ``gradwatch/nonfinite`` and the report page); the diagnosis as the
run summary ``gradwatch/diagnosis`` at close.
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


class Wandb:
    """Log a watch to W&B: into ``run`` (a ``wandb`` run object), else the current ``wandb.run``, else a new
    run made with ``wandb.init(**init)`` that the sink finishes at close. ``stats``: the statistics to log
    (default: every recorded one). ``WandB`` is the same class."""

    def __init__(self, run: Any = None, *, stats: Sequence[str] | None = None, prefix: str = PREFIX, **init: Any):
        wandb = _wandb()
        self.stats, self.prefix = check_stats(stats), prefix
        self._wandb = wandb
        self._own = run is None and wandb.run is None
        self.run = run if run is not None else (wandb.run or wandb.init(**init))
        self.step_metric = f"{prefix}/step"
        self.run.define_metric(self.step_metric, hidden=True)
        self.run.define_metric(f"{prefix}/*", step_metric=self.step_metric)
        self._hists: dict[int, dict[str, Any]] = {}  # histograms waiting for their step's scalars

    def write(self, history: Any, steps: np.ndarray, values: np.ndarray) -> None:
        # one row per step, with that step's histograms, never with step= (see the module's docstring)
        for step, row in step_metrics(history, steps, values, self.stats, self.prefix):
            self.run.log({**row, **self._hists.pop(step, {}), self.step_metric: step})

    def write_histograms(self, history: Any, steps: np.ndarray, counts: np.ndarray) -> None:
        edges = np.asarray(history.hist_edges, dtype=float)
        n_bins = len(edges) - 1  # the regular bins come first; the special counts follow them
        for step, per_layer in zip(np.asarray(steps).tolist(), counts):
            self._hists[int(step)] = {
                f"{self.prefix}/log10_abs_grad/{layer}": self._wandb.Histogram(np_histogram=(c[:n_bins], edges))
                for layer, c in zip(history.layers, per_layer)
                if c[:n_bins].sum() > 0
            }

    def close(self, diagnosis: Any) -> None:
        for step, row in sorted(self._hists.items()):  # histograms whose scalars were written earlier
            self.run.log({**row, self.step_metric: step})
        self._hists = {}
        self.run.summary[f"{self.prefix}/diagnosis"] = diagnosis_text(diagnosis)
        if self._own:
            self.run.finish()


WandB = Wandb  # the earlier spelling

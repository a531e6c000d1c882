"""A lab run as a plain, picklable record: its config, status, metrics, watch history and summary — what a sweep
worker returns and :func:`gradwatch.store.records.store_record` writes. A run that raises is a ``failed`` record
with the error, so one bad config does not stop a sweep.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from gradwatch.stat_names import GRAD_NORM

GRAD_STAT = GRAD_NORM  # the watch statistic the first-to-last layer ratio is taken from


def grad_ratio(norms: np.ndarray) -> float:
    """Geometric mean over steps of ‖∂L/∂θ_first layer‖ / ‖∂L/∂θ_last layer‖ from ``norms`` [steps, layers];
    below 1: the gradient shrinks towards the input (vanishing), above 1: it grows (exploding). Steps where
    either norm is zero or not finite are left out; NaN when none is left."""
    norms = np.asarray(norms, dtype=float)
    if norms.ndim != 2 or norms.shape[1] < 2:
        return math.nan
    first, last = norms[:, 0], norms[:, -1]
    ok = np.isfinite(first) & np.isfinite(last) & (first > 0) & (last > 0)
    return float(np.exp(np.mean(np.log(first[ok] / last[ok])))) if ok.any() else math.nan


def _history_norms(rows: list[tuple[int, int, str, float]], n_layers: int) -> np.ndarray:
    steps: dict[int, list[float]] = {}
    for step, layer, stat, value in rows:
        if stat == GRAD_STAT:
            steps.setdefault(step, [math.nan] * n_layers)[layer] = value
    return np.array([steps[s] for s in sorted(steps)], dtype=float).reshape(-1, n_layers)


def failed_record(config: dict[str, Any], error: str, started: float | None = None) -> dict[str, Any]:
    """The record of a run that failed: its config and the error, nothing measured."""
    return {
        "config": config,
        "status": "failed",
        "error": error,
        "metrics": [],
        "layers": [],
        "history": [],
        "summary": {},
        "started": time.time() if started is None else started,
    }


def train_record(config: dict[str, Any]) -> dict[str, Any]:
    """Train one config with :func:`gradwatch.lab.train` (the watch attached) and return its record."""
    from gradwatch.lab import train
    from gradwatch.lab.config import Config
    from gradwatch.lab.watching import history_rows

    start = time.time()
    cfg = Config(**config)
    try:
        run = train(cfg)
    except Exception as exc:  # a failed run is a result of the sweep, not its end
        return failed_record(cfg.to_dict(), f"{type(exc).__name__}: {exc}", start)
    layers, rows = history_rows(run.history)
    summary = run.summary()
    summary["grad_ratio"] = grad_ratio(_history_norms(rows, len(layers))) if layers else math.nan
    return {
        "config": cfg.to_dict(),
        "status": run.status,
        "error": None,
        "metrics": run.metrics,
        "layers": layers,
        "history": rows,
        "summary": summary,
        "started": start,
    }

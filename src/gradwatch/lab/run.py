"""What :func:`gradwatch.lab.train` returns: the config, per-epoch metrics, the watch history, the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from gradwatch.lab.config import Config
from gradwatch.store.ids import new_run_id  # noqa: F401 - the lab's runs are named by it (re-exported)


def first_nonfinite_epoch(metrics: list[dict[str, Any]]) -> tuple[int, str] | None:
    """(epoch, metric) of the first epoch whose training loss (the optimizer's or the evaluated one) is NaN or
    infinite, or None: a run with such an epoch diverged."""
    for m in metrics:
        for name in ("loss", "train_loss"):
            v = m.get(name)
            if isinstance(v, (int, float)) and not np.isfinite(v):
                return m["epoch"], name
    return None


@dataclass
class Run:
    """One training run. ``metrics`` has one dict per epoch (``epoch``, ``step``, ``loss`` — the mean batch
    loss the optimizer saw —, ``train_loss``, ``accuracy``, ``test_loss``, ``test_accuracy``, ``val_loss`` and
    ``val_accuracy`` when there is a validation split, ``grad_norm`` / ``grad_norm_max`` — the pre-clip global
    gradient norm —, ``lr``, ``seconds``)."""

    id: str
    config: Config
    model: nn.Module
    metrics: list[dict[str, Any]] = field(default_factory=list)
    history: Any = None  # the watch's History (None for an echo state network)
    watcher: Any = field(default=None, repr=False)
    diagnosis: Any = None  # the watch's Diagnosis of the run
    status: str = "running"  # completed, diverged (a non-finite loss), failed or interrupted
    error: str | None = None  # why the run diverged or failed
    source: str = ""
    time_grad_norms: list[list[float]] = field(default_factory=list)  # recurrent: ‖∂L/∂h_t‖ per epoch, per t
    pretraining: list[Any] = field(default_factory=list)  # AutoencoderResult per hidden layer
    stopped_epoch: int | None = None
    best_epoch: int | None = None

    def metric(self, name: str) -> np.ndarray:
        """One metric over the epochs (NaN where an epoch lacks it)."""
        return np.array([m.get(name, np.nan) for m in self.metrics], dtype=float)

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics[-1] if self.metrics else {}

    def summary(self) -> dict[str, Any]:
        out = {
            k: v
            for k, v in self.final.items()
            if k in ("epoch", "step", "loss", "accuracy", "test_loss", "test_accuracy", "val_loss", "val_accuracy")
        }
        if self.pretraining:
            out["pretraining"] = [r.to_dict() for r in self.pretraining]
        if self.stopped_epoch is not None:
            out["stopped_epoch"] = self.stopped_epoch
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        if self.diagnosis is not None:
            out["diagnosis"] = str(self.diagnosis)
            out["healthy"] = bool(self.diagnosis.healthy)
        out["source"] = self.source
        if self.error is not None:
            out["error"] = self.error
        return out

"""The one place where the lab attaches gradwatch's ``watch`` to the model it trains, and reads its history
back as rows for the run store."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from torch import nn


class _Unwatched(AbstractContextManager):
    """Stand-in while :func:`gradwatch.watch` is not available: records nothing."""

    history = None

    def __exit__(self, *exc: Any) -> None:
        return None

    def diagnose(self) -> None:
        return None


def attach_watch(model: nn.Module, optimizer: Any, every: int = 1) -> AbstractContextManager:
    """``with attach_watch(model, opt) as w:`` around the training loop; ``w.history`` afterwards."""
    try:
        from gradwatch import watch
    except ImportError:
        return _Unwatched()
    return watch(model, optimizer=optimizer)


def history_rows(history: Any, after_step: int = -1) -> tuple[list[str], list[tuple[int, int, str, float]]]:
    """(layer names, rows ``(step, layer index, stat, value)``) for the recorded steps after ``after_step``."""
    if history is None:
        return [], []
    import numpy as np

    steps = np.asarray(history.steps)
    new = steps > after_step
    rows: list[tuple[int, int, str, float]] = []
    for stat in history_stats(history):
        values = np.asarray(history.stat(stat))[new]
        for step, row in zip(steps[new].tolist(), values.tolist()):
            rows.extend((int(step), j, stat, float(v)) for j, v in enumerate(row))
    return list(history.layers), rows


def history_stats(history: Any) -> list[str]:
    """Names of the statistics a history holds."""
    stats = getattr(history, "stats", None)
    return list(stats() if callable(stats) else stats or [])

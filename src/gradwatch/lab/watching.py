"""The one place where the lab attaches gradwatch's ``watch`` to the model it trains, and reads its history
back as rows for the run store (and rebuilds a history from stored rows)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from gradwatch.probe.history import History
from gradwatch.watching import watch


def attach_watch(model: nn.Module, optimizer: Any, every: int = 1, **options: Any):
    """``with attach_watch(model, opt) as w:`` around the training loop; ``w.history`` afterwards. The
    default statistics (or ``options`` of :func:`gradwatch.watch`), taken in the optimizer's step pre-hook
    (after clipping: what the optimizer steps on)."""
    return watch(model, optimizer=optimizer, every=every, **options)


def history_rows(history: History | None, after_step: int = -1) -> tuple[list[str], list[tuple[int, int, str, float]]]:
    """(layer names, rows ``(step, layer index, stat, value)``) for the recorded steps after ``after_step``."""
    if history is None or len(history) == 0:
        return [], []
    steps = history.steps
    new = steps > after_step
    rows: list[tuple[int, int, str, float]] = []
    for stat in history.stats:
        values = history.stat(stat)[new]
        for step, row in zip(steps[new].tolist(), values.tolist()):
            rows.extend((step, j, stat, v) for j, v in enumerate(row))
    return list(history.layers), rows


def history_from_store(stored: dict[str, Any]) -> History:
    """A :class:`History` from :meth:`RunStore.history`'s layers, steps and ``{stat: [steps, layers]}``."""
    names = list(stored["stats"])
    h = History(stored["layers"], names)
    if names:
        h.append(stored["steps"], np.stack([stored["stats"][n] for n in names], axis=1))  # [steps, stats, layers]
    return h

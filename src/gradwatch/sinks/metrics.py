"""``Metrics(log)``: hand a watch's per-layer values to any ``log(metrics, step)`` function at flush time — a
Lightning logger's ``log_metrics``, an experiment tracker's ``log`` — and the diagnosis to ``text`` at close."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.sinks.base import PREFIX, check_stats, diagnosis_text, step_metrics


class Metrics:
    """``log(metrics: dict[str, float], step: int)`` is called once per recorded step with one key per statistic
    and layer (``gradwatch/<stat>/<layer>``; NaN/inf kept); ``text(diagnosis: str)``, if given, once at close.
    ``stats``: the statistics to pass (default: every recorded one). Histograms are not passed. ``name``: how
    a warning names this sink if it fails (default ``"Metrics"``)."""

    def __init__(
        self,
        log: Callable[[dict[str, float], int], Any],
        *,
        text: Callable[[str], Any] | None = None,
        stats: Sequence[str] | None = None,
        prefix: str = PREFIX,
        name: str | None = None,
    ):
        if not callable(log):
            raise ConfigError("log", log, "expected a function log(metrics: dict, step: int)")
        if text is not None and not callable(text):
            raise ConfigError("text", text, "expected a function text(diagnosis: str) or None")
        self.log, self.text, self.stats, self.prefix = log, text, check_stats(stats), prefix
        self.name = name

    def write(self, history: Any, steps: np.ndarray, values: np.ndarray) -> None:
        for step, row in step_metrics(history, steps, values, self.stats, self.prefix):
            self.log(row, step)

    def write_histograms(self, history: Any, steps: np.ndarray, counts: np.ndarray) -> None:
        """Histograms are not passed to a metrics function."""

    def close(self, diagnosis: Any) -> None:
        if self.text is not None:
            self.text(diagnosis_text(diagnosis))

"""Where a watch's flushed rows go besides its history: its sinks and, with ``store=``, the run store.

A :class:`~gradwatch.probe.watcher.Watcher` makes one ``Outputs`` and calls :meth:`Outputs.write` after each
flush (with the host arrays it just copied) and :meth:`Outputs.close` once when it closes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.sinks.base import Sink


def _check_sinks(sinks: Sequence[Any]) -> list[Any]:
    if isinstance(sinks, (str, bytes)) or not isinstance(sinks, (list, tuple)):
        sinks = [sinks]  # one sink given without a list
    for s in sinks:
        if not isinstance(s, Sink):
            raise ConfigError("sinks", s, "expected sinks such as gradwatch.sinks.TensorBoard(log_dir), "
                                          "gradwatch.sinks.MLflow(), gradwatch.sinks.WandB() (objects with "
                                          "write, write_histograms and close)")
    return list(sinks)


class Outputs:
    """The sinks of one watch, plus the stored run when the watch has ``store``."""

    def __init__(self, watcher: Any):
        self.sinks = _check_sinks(watcher.sinks)
        if watcher.name is not None and not isinstance(watcher.name, str):
            raise ConfigError("name", watcher.name, "expected a string naming the run, or None")
        if watcher.store is not None:
            from gradwatch.store.watched import WatchedRun

            self.sinks.append(WatchedRun(watcher.store, watcher))
        elif watcher.config is not None:
            raise ConfigError("config", watcher.config, "is saved with the run in the store: pass store= as well")
        self._closed = False

    @property
    def run_id(self) -> str | None:
        """The id of the stored run (None without ``store``)."""
        return next((s.run_id for s in self.sinks if type(s).__name__ == "WatchedRun"), None)

    def write(self, history: Any, steps: np.ndarray | None, values: np.ndarray | None,
              hists: Sequence[tuple[int, np.ndarray]] = ()) -> None:
        """The rows just appended to ``history`` (``steps[n]``, ``values[n, stats, layers]``) and the histograms
        ``(step, counts[layers, bins])``. Histograms go first, so that a sink can log each step once."""
        if self._closed or not self.sinks:
            return
        if len(hists):
            hsteps = np.asarray([s for s, _ in hists], dtype=np.int64)
            counts = np.stack([c for _, c in hists])  # [n, layers, bins]
            for sink in self.sinks:
                sink.write_histograms(history, hsteps, counts)
        if values is not None and len(steps):
            for sink in self.sinks:
                sink.write(history, steps, values)

    def close(self, diagnose: Callable[[], Any]) -> None:
        """Give every sink the diagnosis and close it (each sink is closed even if another fails). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self.sinks:
            return
        diagnosis = diagnose()
        failures = []
        for sink in self.sinks:
            try:
                sink.close(diagnosis)
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the other sinks are closed
                failures.append(exc)
        if failures:
            raise failures[0]

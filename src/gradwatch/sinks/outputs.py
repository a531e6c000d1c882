"""The one outlet of a watch: everything that leaves the training step — its sinks, the run store, the diagnosis
sent to them at the end — goes out through :class:`Outputs`, under the same guard as the watch's hooks.

:func:`gradwatch.watch` (:mod:`gradwatch.watching`) gives ``Outputs`` to the
:class:`~gradwatch.probe.watcher.Watcher` as its outlet; the watcher calls :meth:`Outputs.write` after each flush
(with the host arrays it just copied) and :meth:`Outputs.close` once when it closes. A sink that raises is
reported once (a :class:`~gradwatch.probe.guard.HookFailureWarning` naming it), switched off for the rest of the
watch, and training goes on; the other sinks and the history are not affected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.probe.guard import Guard
from gradwatch.sinks.base import Sink

DIAGNOSIS = "the diagnosis for the sinks"


def _check_sinks(sinks: Sequence[Any]) -> list[Any]:
    if isinstance(sinks, (str, bytes)) or not isinstance(sinks, (list, tuple)):
        sinks = [sinks]  # one sink given without a list
    for s in sinks:
        if not isinstance(s, Sink):
            raise ConfigError(
                "sinks",
                s,
                "expected sinks such as gradwatch.sinks.TensorBoard(log_dir), "
                "gradwatch.sinks.MLflow(), gradwatch.sinks.Wandb() (objects with "
                "write, write_histograms and close)",
            )
    return list(sinks)


def _labels(sinks: Sequence[Any]) -> list[str]:
    """``"sink 'TensorBoard'"`` per sink (``"sink 'TensorBoard' #2"`` for a second one of the same class), or the
    sink's own ``name`` attribute when it has one."""
    labels: list[str] = []
    seen: dict[str, int] = {}
    for s in sinks:
        base = getattr(s, "name", None)
        base = base if isinstance(base, str) and base else type(s).__name__
        seen[base] = seen.get(base, 0) + 1
        labels.append(f"sink {base!r}" + (f" #{seen[base]}" if seen[base] > 1 else ""))
    return labels


class Outputs:
    """The sinks of one watch, plus the stored run when the watch has ``store``; every call to them is guarded."""

    def __init__(self, watcher: Any, guard: Guard | None = None):
        self.sinks = _check_sinks(watcher.sinks)
        if watcher.name is not None and not isinstance(watcher.name, str):
            raise ConfigError("name", watcher.name, "expected a string naming the run, or None")
        if watcher.store is not None:
            from gradwatch.store.watched import WatchedRun

            self.sinks.append(WatchedRun(watcher.store, watcher))
        elif watcher.config is not None:
            raise ConfigError("config", watcher.config, "is saved with the run in the store: pass store= as well")
        self.guard = guard if guard is not None else Guard()
        self.labels = _labels(self.sinks)
        self._closed = False

    @property
    def run_id(self) -> str | None:
        """The id of the stored run (None without ``store``)."""
        return next((s.run_id for s in self.sinks if type(s).__name__ == "WatchedRun"), None)

    def _each(self, method: str, where: str, *args: Any) -> None:
        """``sink.method(*args)`` for every sink still on; one that raises is reported once and switched off."""
        for sink, label in zip(self.sinks, self.labels):
            if self.guard.active(label):
                with self.guard(label, where, outlet=True):
                    getattr(sink, method)(*args)

    def write(
        self,
        history: Any,
        steps: np.ndarray | None,
        values: np.ndarray | None,
        hists: Sequence[tuple[int, np.ndarray]] = (),
    ) -> None:
        """The rows just appended to ``history`` (``steps[n]``, ``values[n, stats, layers]``) and the histograms
        ``(step, counts[layers, bins])``. Histograms go first, so that a sink can log each step once."""
        if self._closed or not self.sinks:
            return
        if len(hists):
            hsteps = np.asarray([s for s, _ in hists], dtype=np.int64)
            counts = np.stack([c for _, c in hists])  # [n, layers, bins]
            self._each("write_histograms", f"histograms of step {int(hsteps[-1])}", history, hsteps, counts)
        if values is not None and steps is not None and len(steps):
            self._each("write", f"the flush of step {int(steps[-1])}", history, steps, values)

    def close(self, diagnose: Callable[[], Any]) -> None:
        """Give every sink the diagnosis and close it (each sink is closed even if another fails). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self.sinks:
            return
        diagnosis = None
        with self.guard(DIAGNOSIS, "the end of the watch", outlet=True):
            diagnosis = diagnose()
        self._each("close", "the end of the watch", diagnosis)

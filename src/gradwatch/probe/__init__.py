"""The probe: attach to a model, record per-layer statistics into a :class:`History`, detach cleanly."""

from gradwatch.probe.history import History
from gradwatch.probe.watcher import NonFiniteGradientError, Watcher, watch

__all__ = ["History", "NonFiniteGradientError", "Watcher", "watch"]

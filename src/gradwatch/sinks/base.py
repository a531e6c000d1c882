"""What every sink shares: the :class:`Sink` protocol, the metric keys, and host rows turned into per-step dicts.

A sink receives what a watch copied to the host at a flush — never a live tensor, never a sync of its own:

* ``write(history, steps, values)``: ``steps[n]`` and ``values[n, stats, layers]`` (the statistics' names and
  the layers' names are ``history.stats`` and ``history.layers``); NaN and ±inf are passed on as they are;
* ``write_histograms(history, steps, counts)``: ``counts[n, layers, bins]`` of log10|∂L/∂θ| per layer, bin
  edges ``history.hist_edges`` (only when the watch records ``grad_hist``);
* ``close(diagnosis)``: the final :class:`~gradwatch.diagnose.rules.Diagnosis` (None when nothing was recorded);
  write it and release what the sink holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gradwatch.errors import ConfigError

PREFIX = "gradwatch"


@runtime_checkable
class Sink(Protocol):
    def write(self, history: Any, steps: np.ndarray, values: np.ndarray) -> None: ...

    def write_histograms(self, history: Any, steps: np.ndarray, counts: np.ndarray) -> None: ...

    def close(self, diagnosis: Any) -> None: ...


def metric_key(stat: str, layer: str, prefix: str = PREFIX) -> str:
    """One key per statistic and layer (never per parameter): ``gradwatch/grad_norm/encoder.layer.0.fc``."""
    return f"{prefix}/{stat}/{layer}"


def check_stats(stats: Sequence[str] | None) -> tuple[str, ...] | None:
    if stats is None:
        return None
    if isinstance(stats, str) or not all(isinstance(s, str) for s in stats):
        raise ConfigError("stats", stats, "expected a list of statistic names, e.g. ['grad_norm', 'nonfinite'], "
                                          "or None for every recorded statistic")
    return tuple(stats)


def step_metrics(history: Any, steps: np.ndarray, values: np.ndarray, stats: Sequence[str] | None = None,
                 prefix: str = PREFIX, *, skip_unsampled: bool = True) -> Iterator[tuple[int, dict[str, float]]]:
    """``(step, {key: value})`` per recorded step, for the statistics in ``stats`` (all recorded ones if None).

    Values are Python floats with NaN/inf kept. A statistic that is sampled every k steps (activation and
    backward-gain statistics) is NaN on all layers at the steps it was not sampled; with ``skip_unsampled`` such
    an all-NaN row of a sampled statistic is left out (it was not measured there, which is not a NaN gradient).
    """
    names = [s for s in history.stats if stats is None or s in stats]
    cols = [history.stats.index(s) for s in names]
    layers = list(history.layers)
    from gradwatch.probe.stats import SAMPLED_STATS  # here: the probe itself imports the sinks

    sampled = set(SAMPLED_STATS)
    for n, step in enumerate(np.asarray(steps).tolist()):
        row: dict[str, float] = {}
        for name, c in zip(names, cols):
            v = values[n, c]
            if skip_unsampled and name in sampled and np.isnan(v).all():
                continue
            row.update(zip((metric_key(name, layer, prefix) for layer in layers), v.tolist()))
        yield int(step), row


def diagnosis_text(diagnosis: Any) -> str:
    """The diagnosis as plain text (a fixed sentence when nothing was recorded)."""
    return "no step was recorded, so there is nothing to diagnose" if diagnosis is None else str(diagnosis)


def diagnosis_markdown(diagnosis: Any) -> str:
    """The diagnosis as Markdown (TensorBoard renders text summaries as Markdown): one preformatted block."""
    return "```\n" + diagnosis_text(diagnosis) + "\n```"

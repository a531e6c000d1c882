"""What every sink shares: the :class:`Sink` protocol, the metric keys, and host rows turned into per-step dicts.

A sink receives what a watch copied to the host at a flush — never a live tensor, never a sync of its own:

* ``write(history, steps, values)``: ``steps[n]`` and ``values[n, stats, layers]`` (the statistics' names and
  the layers' names are ``history.stats`` and ``history.layers``); NaN and ±inf are passed on as they are;
* ``write_histograms(history, steps, counts)``: ``counts[n, layers, bins]`` of log10|∂L/∂θ| per layer, bin
  edges ``history.hist_edges`` (only when the watch records ``grad_hist``);
* ``close(diagnosis)``: the final :class:`~gradwatch.diagnose.findings.Diagnosis` (None when nothing was recorded);
  write it and release what the sink holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.probe.stats import STATS
from gradwatch.stat_names import ACT_NONFINITE, GRAD_NORM_PRECLIP, NONFINITE, WEIGHT_NONFINITE

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
        raise ConfigError(
            "stats",
            stats,
            "expected a list of statistic names, e.g. ['grad_norm', 'nonfinite'], or None for every recorded statistic",
        )
    return tuple(stats)


# the counts that say a layer's gradient, weights or activations held an inf/NaN at a step: a NaN statistic of
# that layer there is a measurement (a non-finite value), anywhere else it stands for "not measured here"
NONFINITE_COUNTS = (NONFINITE, WEIGHT_NONFINITE, ACT_NONFINITE)


def measured(history: Any, values: np.ndarray) -> np.ndarray:
    """Which values were measured: a bool mask like ``values[n, stats, layers]``.

    A finite or infinite value was measured. A NaN was measured when one of the layer's non-finite counts
    (:data:`NONFINITE_COUNTS`) is positive at that step; otherwise it is the watch's placeholder for a statistic not
    sampled at that step (``sample_every``), a layer without a gradient, or a series never recorded
    (``grad_norm_preclip`` when the loop does not clip). When no count is recorded at all, the NaN of the
    statistics taken on every step (``grad_norm``) count as measured, as nothing tells them apart."""
    values = np.asarray(values)
    nan = np.isnan(values)
    # taken on every recorded step for every layer with a gradient (grad_norm, nonfinite); the others are taken
    # on some steps only, and a step where all their layers are NaN is one where they were not taken
    every_step = np.array([s in STATS and STATS[s].every_step and s != GRAD_NORM_PRECLIP for s in history.stats])
    taken = every_step[None, :] | ~nan.all(axis=2)  # [n, stats]
    counts = [history.stats.index(s) for s in NONFINITE_COUNTS if s in history.stats]
    if not counts:
        return ~nan | every_step[None, :, None]
    evidence = (np.nan_to_num(values[:, counts], nan=0.0) > 0).any(axis=1)  # [n, layers]
    return ~nan | (taken[:, :, None] & evidence[:, None, :])


def step_metrics(
    history: Any, steps: np.ndarray, values: np.ndarray, stats: Sequence[str] | None = None, prefix: str = PREFIX
) -> Iterator[tuple[int, dict[str, float]]]:
    """``(step, {key: value})`` per recorded step, for the statistics in ``stats`` (all recorded ones if None),
    holding only the values measured at that step (:func:`measured`): a statistic sampled every k steps appears
    every k steps, a series never recorded not at all; a NaN or inf gradient is passed on as it is. Steps with
    nothing measured are left out."""
    names = [s for s in history.stats if stats is None or s in stats]
    cols = [history.stats.index(s) for s in names]
    layers = list(history.layers)
    keys = [[metric_key(name, layer, prefix) for layer in layers] for name in names]
    keep = measured(history, values)[:, cols]  # [n, names, layers]
    chosen = np.asarray(values)[:, cols]
    for n, step in enumerate(np.asarray(steps).tolist()):
        row: dict[str, float] = {}
        for i, (k, v) in enumerate(zip(keys, chosen[n].tolist())):
            mask = keep[n, i]
            row.update((key, x) for key, x, m in zip(k, v, mask) if m)
        if row:
            yield int(step), row


def diagnosis_text(diagnosis: Any) -> str:
    """The diagnosis as plain text (a fixed sentence when nothing was recorded)."""
    return "no step was recorded, so there is nothing to diagnose" if diagnosis is None else str(diagnosis)


def diagnosis_markdown(diagnosis: Any) -> str:
    """The diagnosis as Markdown (TensorBoard renders text summaries as Markdown): one preformatted block."""
    return "```\n" + diagnosis_text(diagnosis) + "\n```"

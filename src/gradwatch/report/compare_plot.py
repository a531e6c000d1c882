"""Two (or more) runs' per-layer gradient flow side by side: one line per run of a statistic's median over the
recorded steps against the layer's depth (input side on the left), log scale. Reads stored histories."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradwatch.report.plots import _Saveable, config_color, label_axes
from gradwatch.stat_names import GRAD_NORM


def median_per_layer(history, stat: str) -> np.ndarray:
    """Median of ``stat`` over the steps where it was measured, per layer (NaN where never measured)."""
    values = history.stat(stat, sampled_only=True)
    values = np.where(np.isfinite(values), values, np.nan)
    out = np.full(len(history.layers), np.nan)
    measured = ~np.isnan(values).all(axis=0) if len(values) else np.zeros(len(history.layers), dtype=bool)
    if measured.any():
        out[measured] = np.nanmedian(values[:, measured], axis=0)
    return out


class GradientFlowComparison(_Saveable):
    """``histories`` (one per run, labelled by ``labels``): the median ``stat`` of each layer against its
    depth."""

    def __init__(self, histories: Sequence, labels: Sequence[str], stat: str = GRAD_NORM):
        self.histories, self.labels, self.stat = list(histories), list(labels), stat
        self.ax = None

    def plot(self, ax=None) -> GradientFlowComparison:
        ax = self._axes(ax, size=(8, 4.5))
        for i, (h, label) in enumerate(zip(self.histories, self.labels)):
            ax.plot(
                np.arange(len(h.layers)),
                median_per_layer(h, self.stat),
                marker="o",
                ms=3,
                label=label,
                color=config_color(i),
            )
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        label_axes(
            ax,
            xlabel="layer index (0 = input side)",
            ylabel=f"median {self.stat} over steps",
            title=f"Gradient flow per layer: {self.stat}",
            logy=True,
        )
        return self

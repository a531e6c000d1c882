"""Layer × step heatmap of one watch statistic: log10 colour scale, the input-side layer at the bottom, cells
with a non-finite gradient in red. Reads a :class:`~gradwatch.probe.History`; matplotlib imported lazily."""

from __future__ import annotations

import numpy as np

from gradwatch.report.plots import _pyplot, _Saveable
from gradwatch.stat_names import GRAD_NORM, NONFINITE

MAX_LAYER_TICKS = 40  # more layers than this: label every k-th layer on the axis (the page's table has all)
NONFINITE_COLOR = "#d62728"
UNMEASURED_COLOR = "#e6e6e6"


def layer_ticks(n_layers: int, limit: int = MAX_LAYER_TICKS) -> np.ndarray:
    """Indices of the layers labelled on an axis: all of them up to ``limit``, else about ``limit`` evenly spaced
    ones that always include the first (input side) and the last (output side)."""
    if n_layers <= limit:
        return np.arange(n_layers)
    return np.unique(np.linspace(0, n_layers - 1, limit).round().astype(int))


def figure_height(n_layers: int) -> float:
    """Inches: about 0.13 in per layer so that 100 layers stay readable, between 2.8 and 14."""
    return float(np.clip(1.6 + 0.13 * n_layers, 2.8, 14.0))


class LayerStepHeatmap(_Saveable):
    """``stat`` of every layer (rows, input side at the bottom) at every recorded step (columns), coloured by
    log10 of the value. Values ≤ 0 or NaN (not measured) are grey; a step where the layer's gradient had
    non-finite elements (the ``nonfinite`` statistic) is red."""

    def __init__(self, history, stat: str = GRAD_NORM, *, sampled_only: bool = False):
        self.history, self.stat, self.sampled_only = history, stat, sampled_only
        self.ax = None

    def plot(self, ax=None) -> LayerStepHeatmap:
        plt = _pyplot()
        from matplotlib.colors import ListedColormap

        h = self.history
        values = h.stat(self.stat)  # [steps, layers]
        steps = h.steps
        bad = None
        if h.has(NONFINITE):
            bad = np.nan_to_num(h.stat(NONFINITE)) > 0
        if self.sampled_only:
            keep = ~np.isnan(values).all(axis=1)
            values, steps = values[keep], steps[keep]
            bad = None if bad is None else bad[keep]
        n_layers = len(h.layers)
        ax = self._axes(ax, size=(9, figure_height(n_layers)))
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(np.isfinite(values) & (values > 0), np.log10(values), np.nan)
        cmap = plt.get_cmap("viridis").with_extremes(bad=UNMEASURED_COLOR)
        x0, x1 = (float(steps[0]) - 0.5, float(steps[-1]) + 0.5) if len(steps) else (0, 1)
        extent = (x0, x1, -0.5, n_layers - 0.5)
        image = ax.imshow(
            np.ma.masked_invalid(logs.T),
            aspect="auto",
            origin="lower",
            cmap=cmap,
            interpolation="nearest",
            extent=extent,
        )
        if bad is not None and bad.any():
            ax.imshow(
                np.ma.masked_where(~bad.T, bad.T.astype(float)),
                aspect="auto",
                origin="lower",
                cmap=ListedColormap([NONFINITE_COLOR]),
                interpolation="nearest",
                extent=extent,
            )
        ticks = layer_ticks(n_layers)
        ax.set_yticks(ticks, [h.layers[i] for i in ticks], fontsize=7 if n_layers > 20 else 8)
        ax.set_xlabel("step")
        ax.set_ylabel("layer (input side at the bottom)")
        ax.set_title(f"{self.stat} per layer and step (colour: log10)")
        ax.figure.colorbar(image, ax=ax, label=f"log10 {self.stat}", pad=0.01)
        self.ax, self.figure = ax, ax.figure
        return self

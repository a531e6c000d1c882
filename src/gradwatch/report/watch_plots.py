"""Plots of a watch's history: objects that read a :class:`~gradwatch.probe.History`, draw on ``ax`` (or a new
figure) and return themselves (report/plots.py style; matplotlib imported lazily)."""

from __future__ import annotations

import numpy as np

from gradwatch.probe.history import HIST_SPECIAL
from gradwatch.report.plots import _pyplot, _Saveable
from gradwatch.stat_names import GRAD_NORM


class GradientHistograms(_Saveable):
    """Glorot & Bengio-style picture: the distribution of log10|∂L/∂θ| of every layer at one recorded step
    (needs ``stats`` including ``"grad_hist"``). ``step=None`` takes the last histogram. The curves are fractions
    of all the layer's elements; exact zeros and values outside the bins (underflow below 1e-38, overflow, NaN)
    are named in the legend."""

    def __init__(self, history, step: int | None = None):
        self.history, self.step = history, step
        self.ax = None

    def plot(self, ax=None) -> GradientHistograms:
        plt = _pyplot()
        h = self.history
        counts, steps = h.histograms(), h.hist_steps
        if not len(steps):
            raise ValueError("this history has no gradient histograms: watch with stats including 'grad_hist'")
        i = len(steps) - 1 if self.step is None else int(np.flatnonzero(steps == self.step)[0])
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        centres = (h.hist_edges[:-1] + h.hist_edges[1:]) / 2
        outside = h.hist_outside()[i]  # [layers, 4]: zero, underflow, overflow, NaN
        colors = plt.get_cmap("viridis")(np.linspace(0, 1, len(h.layers)))
        for layer, c, out, color in zip(h.layers, counts[i], outside, colors):
            total = c.sum() + out.sum()  # fractions of all the layer's elements
            if total > 0:
                notes = [f"{what} {n / total:.0%}" for what, n in zip(HIST_SPECIAL, out) if n > 0]
                ax.plot(centres, c / total, label=layer + (f" ({', '.join(notes)})" if notes else ""), color=color)
        populated = np.flatnonzero(counts[i].sum(axis=0) > 0)
        if len(populated):  # the decades where there are values, ± 1 decade (the bins span 1e-38 to 1e4)
            ax.set_xlim(centres[populated[0]] - 1, centres[populated[-1]] + 1)
        ax.set_xlabel("log10 |∂L/∂θ| (decades)")
        ax.set_ylabel("fraction of the layer's parameters")
        ax.set_title(f"Backpropagated gradients per layer, step {int(steps[i])}")
        if len(h.layers) <= 12:
            ax.legend(fontsize=8, title="layer (input → output)")
        self.ax, self.figure = ax, ax.figure
        return self


class LayerStatOverTime(_Saveable):
    """One statistic of every layer over the recorded steps (log scale), input-side layers in dark colours. Where
    the history is down-sampled, the line is each window's mean at its first step and a band spans its min–max."""

    def __init__(self, history, stat: str = GRAD_NORM):
        self.history, self.stat = history, stat
        self.ax = None

    def plot(self, ax=None) -> LayerStatOverTime:
        plt = _pyplot()
        h = self.history
        values = h.stat(self.stat)
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        colors = plt.get_cmap("viridis")(np.linspace(0, 1, len(h.layers)))
        lo, hi = (h.stat(self.stat, reduce=r) for r in ("min", "max")) if h.downsampled else (None, None)
        for j, (layer, color) in enumerate(zip(h.layers, colors)):
            keep = np.isfinite(values[:, j]) & (values[:, j] > 0)
            ax.plot(h.steps[keep], values[keep, j], label=layer, color=color)
            if lo is not None and hi is not None:
                ax.fill_between(h.steps[keep], lo[keep, j], hi[keep, j], color=color, alpha=0.2, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(f"{self.stat} (log scale)")
        ax.set_title(f"{self.stat} per layer")
        if len(h.layers) <= 12:
            ax.legend(fontsize=8, title="layer (input → output)")
        self.ax, self.figure = ax, ax.figure
        return self

"""Plots: each a small object that reads saved numbers, draws on ``ax`` (or a new figure), returns itself.

matplotlib is imported lazily (and with the non-interactive Agg backend when no display is set) so that
importing gradwatch never pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def _pyplot():
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class LayerGradientBars:
    """Log-scale bar chart of one value per layer (e.g. mean |∂C/∂W|), input side on the left.

    Example::

        LayerGradientBars(result.layers, result.mean_abs_grad).plot().save("paralysis.png")
    """

    def __init__(self, layers: Sequence[str], values: Sequence[float], *, ylabel: str = "mean |∂C/∂W|",
                 title: str = "Gradient magnitude per layer at initialisation"):
        self.layers, self.values, self.ylabel, self.title = list(layers), list(values), ylabel, title
        self.ax = self.figure = None

    def plot(self, ax=None) -> LayerGradientBars:
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(1.2 * len(self.layers) + 2.5, 4), layout="constrained")
        colors = plt.get_cmap("viridis")([i / max(1, len(self.layers) - 1) for i in range(len(self.layers))])
        bars = ax.bar(self.layers, self.values, color=colors)
        ax.set_yscale("log")
        ax.set_ylabel(self.ylabel + " (log scale)")
        ax.set_xlabel("layer (input → output)")
        ax.set_title(self.title)
        ax.bar_label(bars, labels=[f"{v:.1e}" for v in self.values], fontsize=8, padding=2)
        ax.grid(axis="y", which="major", alpha=0.3)
        self.ax, self.figure = ax, ax.figure
        return self

    def save(self, path: str | os.PathLike, dpi: int = 120) -> Path:
        if self.figure is None:
            self.plot()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.figure.savefig(path, dpi=dpi)
        _pyplot().close(self.figure)
        return path

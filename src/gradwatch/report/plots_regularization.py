"""Plot of the regularisation experiment: noisy training points, the true function and polynomial fits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gradwatch.report.plots import _Saveable, config_color


class PolynomialFits(_Saveable):
    """Training points, the true curve (dashed) and one fitted curve per model, y clipped to the data's range
    so that a wildly over-fitting polynomial stays readable.

    Example::

        PolynomialFits(x, y, grid, truth, {"D = 3": f3, "D = 15": f15}, title="...").save("fits.png")
    """

    def __init__(
        self,
        x: Sequence[float],
        y: Sequence[float],
        grid: Sequence[float],
        truth: Sequence[float],
        fits: Mapping[str, Sequence[float]],
        *,
        title: str,
        xlabel: str = "x",
        ylabel: str = "y",
        margin: float = 0.75,
    ):
        self.x, self.y, self.grid, self.truth, self.fits = list(x), list(y), list(grid), list(truth), fits
        self.title, self.xlabel, self.ylabel, self.margin = title, xlabel, ylabel, margin

    def plot(self, ax=None) -> PolynomialFits:
        ax = self._axes(ax, size=(7.2, 4.6))
        for i, (label, values) in enumerate(self.fits.items()):
            ax.plot(self.grid, list(values), color=config_color(i), lw=1.4, label=label)
        ax.plot(self.grid, self.truth, color="black", ls="--", lw=1, label="true function")
        ax.scatter(self.x, self.y, color="black", s=18, zorder=5, label="training points")
        lo, hi = min(self.y + self.truth), max(self.y + self.truth)
        ax.set_ylim(lo - self.margin, hi + self.margin)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        ax.set_title(self.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        return self

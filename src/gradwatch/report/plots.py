"""Plots: each a small object that reads saved numbers, draws on ``ax`` (or a new figure), returns itself.

matplotlib is imported lazily (and with the non-interactive Agg backend when no display is set) so that
importing gradwatch never pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _pyplot():
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---- shared plot objects for the experiment catalogue ---------------------------------------------------------
# Colours are consistent across experiments: configurations take the tab10 cycle in the order given; layers
# take viridis from input (dark) to output (yellow), as in LayerGradientBars.


def layer_colors(n: int):
    plt = _pyplot()
    return plt.get_cmap("viridis")([i / max(1, n - 1) for i in range(n)])


def config_color(i: int):
    return _pyplot().get_cmap("tab10")(i % 10)


def label_axes(
    ax, *, xlabel: str, ylabel: str, title: str, logy: bool = False, logx: bool = False, legend: bool = True
) -> None:
    """The common finish of a line plot: scales, labels (log scale said in the label), title, grid, legend."""
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (log scale)" if logy else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)


class _Saveable:
    figure: Figure | None = None  # set by plot()
    ax: Axes | None = None

    def plot(self, ax=None):  # pragma: no cover - overridden
        raise NotImplementedError

    def drawn(self) -> Figure:
        """The figure, drawn first if :meth:`plot` was not called yet."""
        if self.figure is None:
            self.plot()
        if self.figure is None:
            raise RuntimeError(f"{type(self).__name__}.plot() did not draw a figure")
        return self.figure

    def _axes(self, ax, size=(6.4, 4.2)):
        if ax is None:
            _, ax = _pyplot().subplots(figsize=size, layout="constrained")
        self.ax, self.figure = ax, ax.figure
        return ax

    def save(self, path: str | os.PathLike, dpi: int = 120) -> Path:
        figure = self.drawn()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=dpi)
        _pyplot().close(figure)
        return path


class LayerGradientBars(_Saveable):
    """Log-scale bar chart of one value per layer (e.g. mean |∂C/∂W|), input side on the left.

    Example::

        LayerGradientBars(result.layers, result.mean_abs_grad).plot().save("paralysis.png")
    """

    def __init__(
        self,
        layers: Sequence[str],
        values: Sequence[float],
        *,
        ylabel: str = "mean |∂C/∂W|",
        title: str = "Gradient magnitude per layer at initialisation",
    ):
        self.layers, self.values, self.ylabel, self.title = list(layers), list(values), ylabel, title

    def plot(self, ax=None) -> LayerGradientBars:
        ax = self._axes(ax, size=(1.2 * len(self.layers) + 2.5, 4))
        bars = ax.bar(self.layers, self.values, color=layer_colors(len(self.layers)))
        ax.set_yscale("log")
        ax.set_ylabel(self.ylabel + " (log scale)")
        ax.set_xlabel("layer (input → output)")
        ax.set_title(self.title)
        ax.bar_label(bars, labels=[f"{v:.1e}" for v in self.values], fontsize=8, padding=2)
        ax.grid(axis="y", which="major", alpha=0.3)
        return self


class Curves(_Saveable):
    """Several named series over a shared kind of x (steps, epochs, depth …): one line each.

    ``series = {label: (xs, ys)}``; ``logy`` for values spanning orders of magnitude; ``hline`` draws a
    reference level (e.g. chance accuracy) with its label. ``layer_colours`` colours the series as layers.
    """

    def __init__(
        self,
        series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
        *,
        xlabel: str,
        ylabel: str,
        title: str,
        logy: bool = False,
        logx: bool = False,
        hline: tuple[float, str] | None = None,
        layer_colours: bool = False,
        markers: bool = False,
    ):
        self.series, self.xlabel, self.ylabel, self.title = series, xlabel, ylabel, title
        self.logy, self.logx, self.hline, self.layer_colours, self.markers = logy, logx, hline, layer_colours, markers

    def plot(self, ax=None) -> Curves:
        ax = self._axes(ax)
        n = len(self.series)
        colours = layer_colors(n) if self.layer_colours else [config_color(i) for i in range(n)]
        for (label, (xs, ys)), c in zip(self.series.items(), colours):
            ax.plot(list(xs), list(ys), label=label, color=c, marker="o" if self.markers else None, ms=3)
        if self.hline is not None:
            ax.axhline(self.hline[0], color="grey", ls="--", lw=1, label=self.hline[1])
        label_axes(ax, xlabel=self.xlabel, ylabel=self.ylabel, title=self.title, logy=self.logy, logx=self.logx)
        return self


class LayerProfiles(_Saveable):
    """One value per layer for several configurations (e.g. ‖∂C/∂W‖ at init, He vs Xavier), log-y.

    ``profiles = {config label: values input→output}``; layers are numbered from 1 on the x axis.
    """

    def __init__(
        self,
        profiles: Mapping[str, Sequence[float]],
        *,
        ylabel: str,
        title: str,
        logy: bool = True,
        xlabel: str = "layer (1 = nearest the input)",
    ):
        self.profiles, self.ylabel, self.title, self.logy, self.xlabel = profiles, ylabel, title, logy, xlabel

    def plot(self, ax=None) -> LayerProfiles:
        ax = self._axes(ax)
        for i, (label, values) in enumerate(self.profiles.items()):
            ax.plot(range(1, len(values) + 1), list(values), marker="o", ms=3, color=config_color(i), label=label)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
        label_axes(ax, xlabel=self.xlabel, ylabel=self.ylabel, title=self.title, logy=self.logy)
        return self


class ImageRow(_Saveable):
    """Images side by side with captions (e.g. an input digit and its image in the first hidden layer)."""

    def __init__(self, images: Mapping[str, Sequence[Sequence[float]]], *, title: str, cmap: str = "gray"):
        self.images, self.title, self.cmap = images, title, cmap

    def plot(self, ax=None) -> ImageRow:
        plt = _pyplot()
        fig, axes = plt.subplots(1, len(self.images), figsize=(2.6 * len(self.images), 3.0), layout="constrained")
        axes = [axes] if len(self.images) == 1 else list(axes)
        for a, (caption, img) in zip(axes, self.images.items()):
            im = a.imshow(img, cmap=self.cmap)
            a.set_title(caption, fontsize=9)
            a.set_xticks([])
            a.set_yticks([])
            fig.colorbar(im, ax=a, shrink=0.75)
        fig.suptitle(self.title)
        self.ax, self.figure = axes[0], fig
        return self

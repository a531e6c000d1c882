"""Plots of Glorot & Bengio 2010 (seeds 001, 004): activation mean ± spread of every layer over training, and
normalised histograms of back-propagated gradients per layer. Same conventions as :mod:`gradwatch.report.plots`
(read saved numbers, lazy matplotlib, ``ax=None``, return self; layers viridis input → output)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gradwatch.report.plots import _pyplot, _Saveable, layer_colors


class LayerBands(_Saveable):
    """Per layer, a line for the mean and a shaded band for mean ± std over steps (Glorot & Bengio Fig. 2).

    ``layers = {label: (means, stds)}`` over the shared ``steps``.
    """

    def __init__(
        self,
        steps: Sequence[float],
        layers: Mapping[str, tuple[Sequence[float], Sequence[float]]],
        *,
        title: str,
        xlabel: str = "training step",
        ylabel: str = "activation value",
    ):
        self.steps, self.layers, self.title, self.xlabel, self.ylabel = list(steps), layers, title, xlabel, ylabel

    def plot(self, ax=None) -> LayerBands:
        ax = self._axes(ax)
        for (label, (mean, std)), c in zip(self.layers.items(), layer_colors(len(self.layers))):
            lo = [m - s for m, s in zip(mean, std)]
            hi = [m + s for m, s in zip(mean, std)]
            ax.plot(self.steps, list(mean), color=c, label=label)
            ax.fill_between(self.steps, lo, hi, color=c, alpha=0.15)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel + " (mean, band ± 1 std)")
        ax.set_title(self.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return self


class LayerHistograms(_Saveable):
    """Normalised histograms (density) of one quantity per layer, one panel per configuration
    (Glorot & Bengio Fig. 7: back-propagated gradients, standard vs normalised init).

    ``panels = {configuration: {layer label: (bin edges, densities)}}``.
    """

    def __init__(
        self,
        panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
        *,
        title: str,
        xlabel: str = "back-propagated gradient ∂C/∂z",
        ylabel: str = "density",
    ):
        self.panels, self.title, self.xlabel, self.ylabel = panels, title, xlabel, ylabel

    def plot(self, ax=None) -> LayerHistograms:
        plt = _pyplot()
        fig, axes = plt.subplots(
            len(self.panels), 1, figsize=(6.4, 2.8 * len(self.panels)), layout="constrained", sharex=True, squeeze=False
        )
        axes = [a[0] for a in axes]
        for a, (panel, layers) in zip(axes, self.panels.items()):
            for (label, (edges, dens)), c in zip(layers.items(), layer_colors(len(layers))):
                centres = [(lo + hi) / 2 for lo, hi in zip(edges[:-1], edges[1:])]
                a.plot(centres, list(dens), color=c, label=label)
            a.set_yscale("log")
            a.set_title(panel, fontsize=10)
            a.set_ylabel(self.ylabel + " (log scale)")
            a.grid(alpha=0.3)
            a.legend(fontsize=7)
        axes[-1].set_xlabel(self.xlabel)
        fig.suptitle(self.title)
        self.ax, self.figure = axes[0], fig
        return self

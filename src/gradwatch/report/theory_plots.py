"""Plots of theory's predictions (the mean-field phase diagram, predicted vs measured gradients, seed 000's
interval problem); each reads saved numbers (a ``to_dict()``), draws on ``ax``, returns itself."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from gradwatch.report.plots import _Saveable, config_color


class IntervalWidth(_Saveable):
    """Width of {a : |w σ'(wa + b)| ≥ 1} against |w|, several curves, the optimum marked with its value."""

    def __init__(
        self,
        w: Sequence[float],
        widths: Mapping[str, Sequence[float]],
        *,
        optimum: tuple[float, float],
        title: str = "Where a sigmoid neuron can grow a gradient (Nielsen, ch. 5, problem 1)",
    ):
        self.w, self.widths, self.optimum, self.title = list(w), widths, optimum, title

    def plot(self, ax=None) -> IntervalWidth:
        ax = self._axes(ax)
        styles = ["-", "--", ":"]
        for i, (label, ys) in enumerate(self.widths.items()):
            ax.plot(self.w, list(ys), styles[i % 3], color=config_color(i), label=label, lw=2 if i == 0 else 1.5)
        w_opt, width = self.optimum
        ax.plot([w_opt], [width], "o", color="black", zorder=5)
        ax.annotate(
            f"optimum |w| = {w_opt:.3f}\nwidth = {width:.4f}",
            (w_opt, width),
            xytext=(12, -4),
            textcoords="offset points",
            fontsize=8,
        )
        ax.axvline(4, color="grey", ls="--", lw=1, label="|w| = 4 = 1 / max σ'")
        ax.set_xlabel("|w|")
        ax.set_ylabel("interval width in a (activation units)")
        ax.set_title(self.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return self


class PhaseDiagramPlot(_Saveable):
    """The (σ_w², σ_b²) plane of one activation (Poole et al. 2016; Schoenholz et al. 2017): the trainable depth
    6ξ_c in colour (log scale), the critical line χ₁ = 1 between the ordered and chaotic phases and, for a given
    depth L, the contour 6ξ_c = L beyond which the network is predicted not to train.

    Example::

        PhaseDiagramPlot(phase_diagram("tanh", sw, sb).to_dict(), depth=50, point=(1.5, 0.05)).save("pd.png")
    """

    def __init__(
        self,
        diagram: dict,
        *,
        depth: int | None = None,
        point: tuple[float, float] | None = None,
        measured: Sequence[tuple[float, float]] = (),
        title: str | None = None,
    ):
        self.diagram, self.depth, self.point, self.measured = diagram, depth, point, list(measured)
        self.title = title or f"Mean-field phase diagram, {diagram['activation']}"

    def plot(self, ax=None) -> PhaseDiagramPlot:
        from matplotlib.colors import LogNorm

        ax = self._axes(ax, size=(7.0, 4.8))
        sw, sb = np.array(self.diagram["sigma_w2"]), np.array(self.diagram["sigma_b2"])
        depth6 = 6 * np.array(self.diagram["xi_c"], dtype=float)
        depth6[~np.isfinite(depth6)] = np.nan  # on the critical line ξ_c = inf
        finite = depth6[np.isfinite(depth6) & (depth6 > 0)]
        norm = LogNorm(vmin=max(finite.min(), 1e-1), vmax=finite.max()) if finite.size else None
        mesh = ax.pcolormesh(sw, sb, np.ma.masked_invalid(depth6), shading="nearest", cmap="viridis", norm=norm)
        ax.figure.colorbar(mesh, ax=ax, label="trainable depth 6·ξ_c (layers, log scale)")
        fine = self.diagram.get("critical_line")  # optional, denser in σ_b²: {"sigma_w2": [...], "sigma_b2": [...]}
        line = np.array(fine["sigma_w2"] if fine else self.diagram["critical_sigma_w2"], dtype=float)
        line_b = np.array(fine["sigma_b2"]) if fine else sb
        ok = np.isfinite(line)
        ax.plot(line[ok], line_b[ok], color="white", lw=2.2, ls="--", label="critical line χ₁ = 1")
        if self.depth is not None and finite.size and finite.min() < self.depth < finite.max():
            cs = ax.contour(sw, sb, depth6, levels=[self.depth], colors="red", linewidths=1.5)
            ax.clabel(cs, fmt={self.depth: f"6ξ_c = {self.depth}"}, fontsize=8)
            ax.plot([], [], color="red", label=f"6ξ_c = L = {self.depth} (deeper does not train)")
        if self.point is not None:
            ax.plot(
                *self.point,
                marker="*",
                ms=14,
                color="orange",
                mec="black",
                ls="none",
                label=f"σ_w² = {self.point[0]:g}, σ_b² = {self.point[1]:g}",
            )
        if self.measured:
            ax.plot(*zip(*self.measured), "o", color="white", mec="black", ls="none", label="measured nets")
        ax.text(
            0.03, 0.95, "ordered: χ₁ < 1\ngradients vanish", transform=ax.transAxes, va="top", color="white", fontsize=9
        )
        ax.text(
            0.97,
            0.55,
            "chaotic: χ₁ > 1\ngradients explode",
            transform=ax.transAxes,
            ha="right",
            color="white",
            fontsize=9,
        )
        steps = np.diff(np.log(sw)) if sw.min() > 0 and len(sw) > 2 else np.array([0.0])
        log_x = bool(np.allclose(steps, steps[0], rtol=1e-6)) and sw.max() / sw.min() > 10  # a geometric grid
        if log_x:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("σ_w² (weight variance × fan-in" + (", log scale)" if log_x else ")"))
        ax.set_ylabel("σ_b² (bias variance)")
        ax.set_title(self.title)
        ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
        return self


class PredictedVsMeasured(_Saveable):
    """Per-layer gradient norms: prediction (line) beside measurement (markers), log scale, input on the left."""

    def __init__(
        self,
        layers: Sequence[str],
        predicted: Sequence[float],
        measured: Sequence[float],
        *,
        ylabel: str = "‖∂L/∂W‖ per example",
        title: str = "Predicted vs measured at initialisation",
    ):
        self.layers, self.predicted, self.measured = list(layers), list(predicted), list(measured)
        self.ylabel, self.title = ylabel, title

    def plot(self, ax=None) -> PredictedVsMeasured:
        ax = self._axes(ax, size=(max(6.0, 0.7 * len(self.layers) + 2), 4.2))
        x = range(len(self.layers))
        ax.plot(x, self.predicted, "-", color="black", label="predicted (variance propagation)")
        ax.plot(x, self.measured, "o", color="tab:orange", label="measured (watch)")
        ax.set_xticks(list(x), self.layers, rotation=45, ha="right")
        values = [v for v in self.predicted + self.measured if v > 0 and math.isfinite(v)]
        log = bool(values) and max(values) / min(values) > 20
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(self.ylabel + (" (log scale)" if log else ""))
        ax.set_xlabel("layer (input → output)")
        ax.set_title(self.title)
        ax.grid(alpha=0.3)
        ax.legend()
        return self

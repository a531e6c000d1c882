"""Plots of the theory experiments: the interval problem (seed 000) and the mean-field phase diagram."""

from __future__ import annotations

from collections.abc import Sequence

from gradwatch.report.plots import _Saveable, config_color


class IntervalWidth(_Saveable):
    """Width of {a : |w σ'(wa + b)| ≥ 1} against |w|, several curves, the optimum marked with its value."""

    def __init__(self, w: Sequence[float], widths: dict[str, Sequence[float]], *, optimum: tuple[float, float],
                 title: str = "Where a sigmoid neuron can grow a gradient (seed 000, problem 1)"):
        self.w, self.widths, self.optimum, self.title = list(w), widths, optimum, title

    def plot(self, ax=None) -> IntervalWidth:
        ax = self._axes(ax)
        styles = ["-", "--", ":"]
        for i, (label, ys) in enumerate(self.widths.items()):
            ax.plot(self.w, list(ys), styles[i % 3], color=config_color(i), label=label, lw=2 if i == 0 else 1.5)
        w_opt, width = self.optimum
        ax.plot([w_opt], [width], "o", color="black", zorder=5)
        ax.annotate(f"optimum |w| = {w_opt:.3f}\nwidth = {width:.4f}", (w_opt, width), xytext=(12, -4),
                    textcoords="offset points", fontsize=8)
        ax.axvline(4, color="grey", ls="--", lw=1, label="|w| = 4 = 1 / max σ'")
        ax.set_xlabel("|w|")
        ax.set_ylabel("interval width in a (activation units)")
        ax.set_title(self.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return self


class PhaseDiagramPlot(_Saveable):
    """Trainable depth 6 ξ_c on a (σ_w², σ_b²) grid (log colour), the critical line χ₁ = 1 and measured points."""

    def __init__(self, sigma_w2: Sequence[float], sigma_b2: Sequence[float], depth: Sequence[Sequence[float]],
                 chi1: Sequence[Sequence[float]], *, measured: Sequence[tuple[float, float]] = (), title: str):
        self.sw, self.sb, self.depth, self.chi1, self.measured, self.title = sigma_w2, sigma_b2, depth, chi1, measured, title

    def plot(self, ax=None) -> PhaseDiagramPlot:
        import numpy as np
        from matplotlib.colors import LogNorm

        ax = self._axes(ax, size=(7, 4.5))
        d = np.asarray(self.depth, dtype=float)
        finite = d[np.isfinite(d) & (d > 0)]
        shown = np.where(np.isfinite(d), d, finite.max() if finite.size else 1.0)
        mesh = ax.pcolormesh(self.sw, self.sb, np.clip(shown, max(finite.min(), 1e-2) if finite.size else 1e-2, None),
                             norm=LogNorm(), cmap="magma", shading="nearest")
        self.figure.colorbar(mesh, ax=ax, label="6 ξ_c (layers, log scale)")
        ax.contour(self.sw, self.sb, np.asarray(self.chi1), levels=[1.0], colors="cyan", linewidths=2)
        ax.plot([], [], color="cyan", lw=2, label="critical line χ₁ = 1")
        if self.measured:
            ax.plot(*zip(*self.measured), "o", color="white", mec="black", label="measured nets")
        ax.set_xscale("log")
        from matplotlib.ticker import NullFormatter

        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("σ_w² (weight variance × fan-in, log scale)")
        ax.set_ylabel("σ_b² (bias variance)")
        ax.set_title(self.title)
        ax.legend(fontsize=8, loc="upper left")
        return self

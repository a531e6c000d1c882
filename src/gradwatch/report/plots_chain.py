"""Plots of the scalar-chain theory experiments (seed 000's interval problem)."""

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

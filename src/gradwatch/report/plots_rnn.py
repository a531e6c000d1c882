"""Plot of the RNN experiment: ‖∂x_t/∂x_k‖ against t − k with Hochreiter's bound, one colour per W_rec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gradwatch.report.plots import _Saveable, config_color


class JacobianDecay(_Saveable):
    """``curves = {label: (actual, bound)}`` over ``lags``: the measured norm solid, the bound dashed in the
    same colour; log y, limited to a few decades around the measured values so an exploding bound stays
    readable.

    Example::

        JacobianDecay(range(1, 61), {"ρ = 0.9": (actual, bound)}, title="...").save("rnn.png")
    """

    def __init__(
        self,
        lags: Sequence[int],
        curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
        *,
        title: str,
        decades_above: float = 3.0,
    ):
        self.lags, self.curves, self.title, self.decades_above = list(lags), curves, title, decades_above

    def plot(self, ax=None) -> JacobianDecay:
        ax = self._axes(ax, size=(7.0, 4.6))
        measured = [v for actual, _ in self.curves.values() for v in actual if v > 0]
        for i, (label, (actual, bound)) in enumerate(self.curves.items()):
            c = config_color(i)
            ax.plot(self.lags, list(actual), color=c, lw=1.8, label=f"{label}: measured")
            ax.plot(self.lags, list(bound), color=c, lw=1.2, ls="--", label=f"{label}: Hochreiter's bound")
        ax.set_yscale("log")
        if measured:
            ax.set_ylim(min(measured) / 3, max(measured) * 10**self.decades_above)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xlabel("t − k (steps back in time)")
        ax.set_ylabel("‖∂x_t/∂x_k‖₂ (log scale)")
        ax.set_title(self.title)
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=7)
        return self

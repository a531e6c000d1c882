"""Seed 000's problem (Nielsen, ch. 5): for which inputs can a sigmoid neuron make a gradient *grow*?

A layer multiplies the gradient by w σ'(wa + b). Since σ' ≤ 1/4, |w σ'| ≥ 1 needs |w| ≥ 4. For |w| ≥ 4 the
set of inputs a with |w σ'(wa + b)| ≥ 1 is an interval of width

    (2/|w|) · ln( |w|(1 + √(1 − 4/|w|))/2 − 1 )

(solve σ(1 − σ) = 1/|w| for σ, take logits, divide by |w|). It is 0 at |w| = 4, rises, then shrinks like
ln|w|/|w|: a large weight makes σ' tiny almost everywhere. The widest interval is at |w| ≈ 6.9 (seed 000:
"numerically show that the interval is largest for |w| ≈ 6.9").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy.optimize import brentq, minimize_scalar

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import get_activation, numpy_activation

OPTIMUM_XTOL = 1e-10  # the optimum |w| is located to this absolute tolerance


def min_weight_for_growth(activation: str = "sigmoid") -> float:
    """The smallest |w| for which |w σ'(z)| ≥ 1 is possible: 1/max σ' (4 for the sigmoid)."""
    return 1.0 / get_activation(activation).max_derivative()


def nielsen_interval_width(w: float) -> float:
    """Closed form of the width of {a : |w σ'(wa + b)| ≥ 1} for the sigmoid (independent of b); 0 if |w| < 4."""
    w = _check_weight(w)
    if w < 4:
        return 0.0
    return 2.0 / w * math.log(w * (1 + math.sqrt(1 - 4 / w)) / 2 - 1)


def interval_width_numeric(w: float, activation: str = "sigmoid") -> float:
    """The same width found numerically: σ'(z) = 1/|w| solved by root finding, the interval in a is 2z/|w|.

    Needs σ' even and decreasing in |z| (sigmoid, tanh); 0 when max σ' < 1/|w|.
    """
    w = _check_weight(w)
    d = numpy_activation(activation).deriv
    if w == 0 or float(d(0.0)) < 1 / w:
        return 0.0
    z = brentq(lambda t: float(d(t)) - 1 / w, 0.0, 50.0, xtol=1e-15, rtol=1e-15)
    return 2 * z / w


@dataclass(frozen=True)
class NielsenOptimum:
    weight: float  # |w| maximising the width
    width: float  # the maximal width

    def to_dict(self) -> dict:
        return asdict(self)


def nielsen_optimum(xtol: float = OPTIMUM_XTOL) -> NielsenOptimum:
    """The |w| ≥ 4 with the widest growth interval, by bounded Brent search on the closed form."""
    res = minimize_scalar(
        lambda w: -nielsen_interval_width(w), bounds=(4.0, 100.0), method="bounded", options={"xatol": xtol}
    )
    return NielsenOptimum(float(res.x), nielsen_interval_width(res.x))


def _check_weight(w: float) -> float:
    try:
        w = abs(float(w))
    except (TypeError, ValueError):
        raise ConfigError("w", w, "expected a number") from None
    if not math.isfinite(w):
        raise ConfigError("w", w, "must be finite")
    return w

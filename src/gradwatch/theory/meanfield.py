"""Mean-field signal propagation in wide random networks (Poole et al. 2016; Schoenholz et al. 2017).

A deep fully connected net with W_ij ~ N(0, σ_w²/N), b_i ~ N(0, σ_b²) and an elementwise φ, in the limit of
wide layers. The pre-activations of one input have length q^l = σ_w² ∫Dz φ(√q^{l−1} z)² + σ_b², which
settles at a fixed point q*. Two inputs have correlation c^l, which settles at c*. Then

- χ₁ = σ_w² ∫Dz φ'(√q* z)² — the factor by which the mean squared gradient grows per layer, backwards:
  χ₁ < 1 ordered phase (gradients vanish), χ₁ > 1 chaotic phase (they explode), χ₁ = 1 the critical line;
- ξ_q⁻¹ = −ln[χ₁ + σ_w² ∫Dz φ''(√q* z) φ(√q* z)] — the depth over which lengths forget the input;
- ξ_c⁻¹ = −ln[σ_w² ∫Dz₁Dz₂ φ'(u₁*) φ'(u₂*)] — the depth over which correlations do (= −1/ln χ₁ when
  ordered); networks train roughly when their depth L ≲ 6 ξ_c.

Integrals are Gaussian quadratures (:mod:`gradwatch.theory.gauss`); any registered activation works.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import NumpyActivation, numpy_activation
from gradwatch.theory.gauss import expect, expect_pair

CRITICAL_TOL = 1e-6  # |χ₁ − 1| below this counts as critical
TRAINABLE_DEPTH_FACTOR = 6  # Schoenholz et al.: trainable when L ≲ 6 ξ_c
Q_GRID = np.concatenate([[0.0], np.logspace(-12, 12, 241)])  # where the length map is scanned for q*
_C_EDGE = 1e-8  # c* is searched in [−1 + edge, 1 − edge]
MAX_VARIANCE = 1e10  # largest σ_w², σ_b² accepted: q* ≤ ~1e10 stays inside Q_GRID (up to 1e12)


@dataclass(frozen=True)
class MeanField:
    """The mean-field predictions for one (activation, σ_w², σ_b²)."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    q0: float
    q_star: float  # fixed point of the length map (inf: lengths grow without bound)
    chi1: float  # per-layer growth of the mean squared gradient at q*
    c_star: float  # fixed point of the correlation map (1 in the ordered phase)
    chi_c: float  # σ_w² ∫Dz₁Dz₂ φ'(u₁*)φ'(u₂*), the slope of the correlation map at c*
    xi_q: float  # depth scale of the length map (inf when it does not converge geometrically)
    xi_c: float  # depth scale of correlations (inf on the critical line)
    phase: str  # "ordered", "critical" or "chaotic"

    @property
    def trainable_depth(self) -> float:
        """6 ξ_c: about the deepest network of this kind that still trains (Schoenholz et al. 2017)."""
        return TRAINABLE_DEPTH_FACTOR * self.xi_c

    def gradient_growth(self, depth: int) -> float:
        """Predicted ‖∂L/∂h_l‖² / ‖∂L/∂h_{l+depth}‖² = χ₁^depth: > 1 means gradients grow toward the input."""
        try:
            return self.chi1**depth
        except OverflowError:  # χ₁ > 1 over very many layers: beyond the largest float
            return math.inf

    def to_dict(self, depth: int | None = None) -> dict:
        out = asdict(self) | {"trainable_depth": self.trainable_depth}
        if depth is not None:
            out |= {
                "depth": depth,
                "gradient_growth": self.gradient_growth(depth),
                "gradient_norm_ratio_first_to_last": math.sqrt(self.gradient_growth(depth)),
            }
        return out


def check_variances(sigma_w2: float, sigma_b2: float) -> tuple[float, float]:
    """Both must be finite, 0 < σ_w² ≤ :data:`MAX_VARIANCE` and 0 ≤ σ_b² ≤ :data:`MAX_VARIANCE`; a
    :class:`ConfigError` otherwise. Within these bounds q*, χ₁ agree with adaptive quadrature to 1e−11 for every
    registered activation (tests/test_theory_meanfield_range.py)."""
    bound = f"≤ {MAX_VARIANCE:.0e} (beyond, q* leaves the range the fixed point is found in)"
    for name, v, ok, allowed in (
        ("sigma_w2", sigma_w2, lambda x: x > 0, "the weight variance must be > 0, "),
        ("sigma_b2", sigma_b2, lambda x: x >= 0, "a variance must be ≥ 0, "),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{name}={v!r} is not allowed: expected a number")
        if not math.isfinite(v) or not ok(v) or v > MAX_VARIANCE:
            raise ConfigError(name, v, allowed + bound + " and finite")
    return float(sigma_w2), float(sigma_b2)


def length_map(act: NumpyActivation, sigma_w2: float, sigma_b2: float, q: float | np.ndarray):
    """q^l = σ_w² ∫Dz φ(√q z)² + σ_b² (``q`` may be an array)."""
    return sigma_w2 * expect(lambda h: act.fn(h) ** 2, q) + sigma_b2


def q_star(activation: str, sigma_w2: float, sigma_b2: float, q0: float = 1.0) -> float:
    """The fixed point q* the length map reaches from q0 (0 or inf where it runs there).

    The length map is scanned on a log grid; the stable fixed point is where F(q) − q changes sign from + to −,
    the first such crossing above q0 when lengths grow from q0 and the first below when they shrink.
    """
    sigma_w2, sigma_b2 = check_variances(sigma_w2, sigma_b2)
    if not (math.isfinite(q0) and q0 >= 0):
        raise ConfigError("q0", q0, "the input length must be ≥ 0 and finite")
    act = numpy_activation(activation)

    def gap(q):
        return length_map(act, sigma_w2, sigma_b2, q) - q

    g0 = gap(q0)
    if abs(g0) <= 1e-12 * max(1.0, q0):
        return q0  # every length is kept (e.g. ReLU with σ_w² = 2, σ_b² = 0): q0 is the fixed point
    side = Q_GRID[Q_GRID > q0] if g0 > 0 else Q_GRID[Q_GRID < q0][::-1]
    points = np.concatenate([[q0], side])
    gaps = np.concatenate([[g0], gap(side)])
    crossed = np.nonzero(gaps * np.sign(g0) <= 0)[0]
    if len(crossed) == 0:
        return math.inf if g0 > 0 else 0.0
    i = crossed[0]
    if gaps[i] == 0:
        return float(points[i])
    lo, hi = sorted((points[i - 1], points[i]))
    return float(brentq(gap, lo, hi, xtol=1e-300, rtol=1e-14, maxiter=500))


def correlation_map(act: NumpyActivation, sigma_w2: float, sigma_b2: float, q: float, c: float) -> float:
    """c^l = (σ_w² ∫Dz₁Dz₂ φ(u₁)φ(u₂) + σ_b²)/q* for two inputs at length q* with correlation c."""
    return (sigma_w2 * expect_pair(act.fn, act.fn, q, c) + sigma_b2) / q


def mean_field(
    activation: str, sigma_w2: float, sigma_b2: float, q0: float = 1.0, critical_tol: float = CRITICAL_TOL
) -> MeanField:
    """q*, χ₁, c*, ξ_q, ξ_c and the phase for ``activation`` at (σ_w², σ_b²).

    Where q* = inf (e.g. ReLU with σ_w² > 2), χ₁ is its limit for large lengths and c*, ξ's are nan; where
    q* = 0 (e.g. tanh with σ_b² = 0, σ_w² < 1), the limit for small lengths.
    """
    sigma_w2, sigma_b2 = check_variances(sigma_w2, sigma_b2)
    act = numpy_activation(activation)
    q = q_star(activation, sigma_w2, sigma_b2, q0)
    q_eval, chi1 = _chi1_at(act, sigma_w2, q)
    phase = "critical" if abs(chi1 - 1) <= critical_tol else ("ordered" if chi1 < 1 else "chaotic")
    if math.isinf(q):
        return MeanField(act.name, sigma_w2, sigma_b2, q0, q, chi1, math.nan, math.nan, math.nan, math.nan, phase)
    slope_q = chi1 + sigma_w2 * float(expect(lambda h: act.deriv2(h) * act.fn(h), q_eval))
    c = 1.0 if phase != "chaotic" else _c_star(act, sigma_w2, sigma_b2, q)
    chi_c = chi1 if c == 1.0 else sigma_w2 * expect_pair(act.deriv, act.deriv, q, c)
    return MeanField(
        act.name,
        sigma_w2,
        sigma_b2,
        q0,
        q,
        chi1,
        c,
        chi_c,
        _depth_scale(slope_q, critical_tol),
        _depth_scale(chi_c, critical_tol),
        phase,
    )


def _chi1_at(act: NumpyActivation, sigma_w2: float, q: float) -> tuple[float, float]:
    """(the length χ₁ is evaluated at, χ₁ = σ_w² ∫Dz φ'(√q z)²) for the fixed point q. At q* = 0 or inf, χ₁ is the
    limit q → 0⁺ or q → ∞ (for ReLU at q = 0 exactly, φ'(0) = 0 would be used)."""
    q_eval = Q_GRID[-1] if math.isinf(q) else (Q_GRID[1] if q == 0 else q)
    return q_eval, float(sigma_w2 * expect(lambda h: act.deriv(h) ** 2, q_eval))


def chi1(activation: str, sigma_w2: float, sigma_b2: float, q0: float = 1.0) -> float:
    """χ₁ alone, without the correlation fixed point c* that :func:`mean_field` also solves for: what the critical
    line needs (tanh's line at 31 values of σ_b²: 0.4 s instead of 21 s, measured)."""
    sigma_w2, sigma_b2 = check_variances(sigma_w2, sigma_b2)
    act = numpy_activation(activation)
    return _chi1_at(act, sigma_w2, q_star(activation, sigma_w2, sigma_b2, q0))[1]


def _c_star(act: NumpyActivation, sigma_w2: float, sigma_b2: float, q: float) -> float:
    """The stable fixed point c* < 1 of the correlation map in the chaotic phase (where c = 1 is unstable)."""

    def gap(c):
        return correlation_map(act, sigma_w2, sigma_b2, q, c) - c

    lo, hi = -1 + _C_EDGE, 1 - _C_EDGE
    if gap(hi) >= 0:
        return 1.0  # numerically indistinguishable from the critical line
    if gap(lo) <= 0:
        return lo
    return float(brentq(gap, lo, hi, xtol=1e-13, rtol=1e-13))


def _depth_scale(slope: float, critical_tol: float) -> float:
    """ξ = −1/ln(slope) for 0 < slope < 1; inf when the map does not contract (slope ≥ 1 − critical_tol)."""
    if slope >= 1 - critical_tol:
        return math.inf
    if slope <= 0:
        return 0.0
    return -1.0 / math.log(slope)


def critical_sigma_w2(activation: str, sigma_b2: float, lo: float = 1e-2, hi: float = 1e3) -> float:
    """The σ_w² on the critical line χ₁(σ_w², σ_b²) = 1, the first crossing in [lo, hi].

    Where χ₁ touches 1 tangentially (tanh at σ_b² = 0: χ₁ − 1 = O((σ_w² − 1)²) on the chaotic side) the root
    is determined to about √(machine ε) ≈ 1e−7 only.
    """
    check_variances(1.0, sigma_b2)

    def excess(sw2):
        return chi1(activation, sw2, sigma_b2) - 1

    grid = np.geomspace(lo, hi, 61)
    values = [excess(s) for s in grid]
    for a, b, fa, fb in zip(grid, grid[1:], values, values[1:]):
        if fa == 0:
            return float(a)
        if fa < 0 < fb or fb < 0 < fa:
            return float(brentq(excess, a, b, xtol=1e-12, rtol=1e-12))
    raise ConfigError("sigma_b2", sigma_b2, f"no σ_w² in [{lo}, {hi}] puts {activation} on the critical line χ₁ = 1")


def critical_line(activation: str, sigma_b2: Sequence[float], lo: float = 1e-2, hi: float = 1e3) -> list[float]:
    """:func:`critical_sigma_w2` at each σ_b², nan where [lo, hi] holds no crossing."""
    line = []
    for b in sigma_b2:
        try:
            line.append(critical_sigma_w2(activation, float(b), lo=lo, hi=hi))
        except ConfigError:
            line.append(math.nan)
    return line


@dataclass(frozen=True)
class PhaseDiagram:
    """Mean-field predictions on a (σ_w², σ_b²) grid: arrays indexed [σ_b² row, σ_w² column]."""

    activation: str
    sigma_w2: list[float]
    sigma_b2: list[float]
    chi1: list[list[float]]
    xi_c: list[list[float]]
    critical_sigma_w2: list[float]  # the χ₁ = 1 line, one σ_w² per σ_b² (nan where there is none)

    def to_dict(self) -> dict:
        return asdict(self)


def phase_diagram(activation: str, sigma_w2: np.ndarray, sigma_b2: np.ndarray, progress=None) -> PhaseDiagram:
    """χ₁ and ξ_c at every grid point, and the critical line. ``progress(i, total)`` is called per point."""
    sw, sb = np.asarray(sigma_w2, dtype=float), np.asarray(sigma_b2, dtype=float)
    chi, xi = np.empty((len(sb), len(sw))), np.empty((len(sb), len(sw)))
    total = len(sb) * (len(sw) + 1)
    for i, b in enumerate(sb):
        for k, w in enumerate(sw):
            mf = mean_field(activation, float(w), float(b))
            chi[i, k], xi[i, k] = mf.chi1, mf.xi_c
            if progress:
                progress(i * (len(sw) + 1) + k + 1, total)
    line = []
    for i, b in enumerate(sb):
        line += critical_line(activation, [b], lo=float(sw.min()), hi=float(sw.max()))
        if progress:
            progress((i + 1) * (len(sw) + 1), total)
    return PhaseDiagram(numpy_activation(activation).name, sw.tolist(), sb.tolist(), chi.tolist(), xi.tolist(), line)

"""Mean-field numerics over the whole range the CLI accepts: q* and χ₁ from the split Gauss–Legendre rules
against adaptive quadrature (scipy's QUADPACK) in h = √q z, cut at decades — for every registered activation and
σ_w² from 1e−2 to 1e10; beyond, the variances are refused."""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from gradwatch.cli import main
from gradwatch.errors import ConfigError
from gradwatch.nn.activations import _NP, numpy_activation
from gradwatch.theory.meanfield import MAX_VARIANCE, mean_field

KINKS = (-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)  # where the registered activations have corners


def gaussian_expectation(f, q: float) -> float:
    """E f(h), h ~ N(0, q), by QUADPACK over [−12√q, 12√q] cut at 0, ±10^k and ±k√q (each piece adaptive)."""
    s = math.sqrt(q)
    cuts = sorted({0.0, *(x for k in range(-1, 12) for x in (10.0**k, -(10.0**k))), *(s * k for k in range(-12, 13))})
    cuts = [c for c in cuts if -12 * s <= c <= 12 * s]

    def g(h):
        return float(f(np.array(h))) * math.exp(-h * h / (2 * q)) / math.sqrt(2 * math.pi * q)

    return sum(quad(g, a, b, points=[p for p in KINKS if a < p < b] or None, limit=200, epsabs=0, epsrel=1e-12)[0]
               for a, b in zip(cuts, cuts[1:]))


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("activation", sorted(_NP))
def test_q_star_and_chi1_agree_with_adaptive_quadrature_up_to_the_largest_accepted_variance(activation):
    act = numpy_activation(activation)
    for sigma_w2 in (1e-2, 1.0, 1e3, 1e6, MAX_VARIANCE):
        for sigma_b2 in (0.0, 0.05):
            mf = mean_field(activation, sigma_w2, sigma_b2)
            if not 0 < mf.q_star < math.inf:  # lengths run to 0 or ∞: χ₁ is a limit there, checked elsewhere
                continue
            length = sigma_w2 * gaussian_expectation(lambda h: act.fn(h) ** 2, mf.q_star) + sigma_b2
            chi1 = sigma_w2 * gaussian_expectation(lambda h: act.deriv(h) ** 2, mf.q_star)
            assert length == pytest.approx(mf.q_star, rel=1e-9), (sigma_w2, sigma_b2)  # q* is a fixed point
            assert mf.chi1 == pytest.approx(chi1, rel=1e-9), (sigma_w2, sigma_b2)
            assert mf.phase == ("chaotic" if chi1 > 1 + 1e-6 else "ordered" if chi1 < 1 - 1e-6 else "critical")


def test_tanh_grows_chaotic_with_sigma_w2_as_the_large_variance_limit_says():
    # q* → σ_w² E[tanh²] ≈ σ_w², and ∫Dz sech⁴(√q z) → (4/3)/√(2πq): χ₁ → (4/3) √(σ_w²/(2π)) ≈ 0.532 √σ_w²
    for sigma_w2 in (1e5, 1e6, 1e8, 1e10):
        mf = mean_field("tanh", sigma_w2, 0.05)
        assert mf.phase == "chaotic"
        assert mf.chi1 == pytest.approx(4 / 3 * math.sqrt(mf.q_star / (2 * math.pi)) * sigma_w2 / mf.q_star, rel=1e-3)


@pytest.mark.parametrize("flag,value", [("--sigma-w2", "1e11"), ("--sigma-w2", "1e16"), ("--sigma-b2", "1e300"),
                                        ("--sigma-w2", "0"), ("--sigma-w2", "nan"), ("--sigma-b2", "-inf")])
def test_variances_beyond_the_range_are_refused_in_one_line(capsys, flag, value):
    assert main(["theory", "meanfield", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err and ("1e+10" in err or "finite" in err or "> 0" in err)


def test_the_api_refuses_them_naming_the_parameter():
    with pytest.raises(ConfigError, match="sigma_w2=1e"):
        mean_field("tanh", 1e16, 0.0)
    with pytest.raises(TypeError, match="sigma_b2='1'"):
        mean_field("tanh", 1.0, "1")

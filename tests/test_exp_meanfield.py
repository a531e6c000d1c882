"""meanfield: measured gradient growth against χ₁, χ₁ against a Monte-Carlo integral, the phase diagram's peak."""

import math

import numpy as np
import pytest

from gradwatch.lab.experiments import meanfield as mfx


@pytest.fixture(scope="module", params=[0, 3], ids=["seed0", "seed3"])
def result(request):
    return mfx.EXPERIMENT(quick=True, seed=request.param)


def test_measured_growth_matches_chi1_on_both_sides_of_the_critical_line(result):
    rows = result.numbers["sweep"]
    for r in rows:
        assert r["measured_chi1"] == pytest.approx(r["chi1"], rel=mfx.CHI_RTOL)
    ordered = [r for r in rows if r["chi1"] < 0.95]
    chaotic = [r for r in rows if r["chi1"] > 1.05]
    assert ordered and chaotic
    assert all(r["grad_sq"][0] < 1e-2 * r["grad_sq"][-1] for r in ordered if r["sigma_w2"] <= 1)  # vanishing
    assert all(r["grad_sq"][0] > r["grad_sq"][-1] for r in chaotic)                               # exploding
    assert result.holds


def test_chi1_equals_a_monte_carlo_integral_at_the_fitted_q_star(result):
    """χ₁ = σ_w² E[φ'(√q* z)²] and q* = σ_w² E[φ(√q* z)²] + σ_b², z ~ N(0, 1), by 4·10⁶ samples."""
    z = np.random.default_rng(0).standard_normal(4_000_000)
    for r in result.numbers["sweep"]:
        q = r["q_star"]
        assert q == pytest.approx(r["sigma_w2"] * np.mean(np.tanh(math.sqrt(q) * z) ** 2) + 0.05, rel=2e-3)
        assert r["chi1"] == pytest.approx(r["sigma_w2"] * np.mean((1 - np.tanh(math.sqrt(q) * z) ** 2) ** 2),
                                          rel=2e-3)


def test_fit_recovers_a_known_geometric_profile():
    profile = 3.0 * 0.8 ** np.arange(12)[::-1]
    assert mfx.fitted_chi1(profile, burn_in=2) == pytest.approx(0.8, rel=1e-12)


def test_trainable_depth_peaks_at_the_critical_line(result):
    pd = result.numbers["phase_diagram"]
    grid = pd["sigma_w2"]
    for peak, crit in zip(pd["peak_sigma_w2"], pd["nearest_critical_sigma_w2"]):
        assert abs(grid.index(peak) - grid.index(crit)) <= 1
    sw2, z = result.numbers["critical_sigma_w2"], np.random.default_rng(1).standard_normal(1_000_000)
    q = 1.0
    for _ in range(50):  # iterate the length map to q* by Monte Carlo
        q = sw2 * np.mean(np.tanh(math.sqrt(q) * z) ** 2) + 0.05
    assert sw2 * np.mean((1 - np.tanh(math.sqrt(q) * z) ** 2) ** 2) == pytest.approx(1.0, abs=5e-3)

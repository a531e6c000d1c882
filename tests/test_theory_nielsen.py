"""Seed 000's interval problem: closed form = root finding = brute-force grid count; optimum |w| ≈ 6.9."""

import numpy as np
import pytest

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import numpy_activation
from gradwatch.theory.nielsen import (interval_width_numeric, min_weight_for_growth, nielsen_interval_width,
                                      nielsen_optimum)

SIGMOID = numpy_activation("sigmoid")
STEP = 1e-6


def _brute_force_width(w, b):
    """Count grid points a with |w σ'(wa + b)| ≥ 1 around the centre −b/w, times the spacing."""
    a = np.arange(-1.0, 1.0, STEP) - b / w
    return np.count_nonzero(np.abs(w * SIGMOID.deriv(w * a + b)) >= 1) * STEP


@pytest.mark.parametrize("w", [4.2, 5.0, 6.9, 10.0, -7.5, 30.0])
@pytest.mark.parametrize("b", [0.0, 1.3])
def test_closed_form_equals_brute_force_count(w, b):
    assert nielsen_interval_width(w) == pytest.approx(_brute_force_width(w, b), abs=3 * STEP)


@pytest.mark.parametrize("w", [4.0001, 4.5, 6.9, 12.0, 1e3])
def test_closed_form_equals_root_finding(w):
    assert nielsen_interval_width(w) == pytest.approx(interval_width_numeric(w), rel=1e-10)


@pytest.mark.parametrize("w", [0.0, 1.0, 3.9, -3.99])
def test_no_growth_below_four(w):
    assert nielsen_interval_width(w) == 0.0 == _brute_force_width(w if w else 1e-3, 0.0)


def test_growth_needs_weight_four_for_the_sigmoid():
    """|wσ'(z)| > 1 requires |w| ≥ 1/max σ' = 4: max σ' found on a grid."""
    z = np.linspace(-10, 10, 200_001)
    assert min_weight_for_growth("sigmoid") == pytest.approx(1 / SIGMOID.deriv(z).max(), rel=1e-12)
    assert min_weight_for_growth("sigmoid") == 4.0
    assert nielsen_interval_width(4.0 + 1e-6) > 0


def test_optimum_is_six_point_nine():
    best = nielsen_optimum()
    # independent check: a coarse-to-fine grid search over the root-finding width, to 1e-5
    grid = np.arange(6.0, 8.0, 1e-3)
    w0 = grid[np.argmax([interval_width_numeric(w) for w in grid])]
    fine = np.arange(w0 - 2e-3, w0 + 2e-3, 1e-5)
    w1 = fine[np.argmax([interval_width_numeric(w) for w in fine])]
    assert abs(best.weight - w1) < 1e-4
    assert round(best.weight, 1) == 6.9  # the value seed 000 states
    assert best.width == pytest.approx(interval_width_numeric(best.weight), rel=1e-12)
    assert best.width >= max(nielsen_interval_width(best.weight + d) for d in (-1e-3, 1e-3))


def test_non_numeric_weight_is_refused():
    with pytest.raises(ConfigError, match="w='big'"):
        nielsen_interval_width("big")


def test_infinite_weight_is_refused():
    with pytest.raises(ConfigError, match="w=inf.*finite"):
        nielsen_interval_width(float("inf"))

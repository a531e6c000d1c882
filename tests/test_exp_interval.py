"""interval: the experiment's widths against a brute-force scan of |w σ'(wa + b)| ≥ 1 over a fine grid of a."""

import numpy as np
import pytest

from gradwatch.errors import ConfigError
from gradwatch.lab.experiments import interval


def _brute_width(w, b=0.0, a_step=1e-5):
    a = np.arange(-3, 3, a_step)
    s = 1 / (1 + np.exp(-(w * a + b)))
    return a_step * np.count_nonzero(np.abs(w * s * (1 - s)) >= 1)


@pytest.fixture(scope="module")
def result():
    return interval.EXPERIMENT(quick=True)


@pytest.mark.parametrize("w, b", [(4.5, 0.0), (6.9, -3.0), (-10.0, 2.0), (25.0, 1.0)])
def test_widths_equal_a_brute_force_scan(result, w, b):
    n = result.numbers
    at = int(np.argmin(np.abs(np.asarray(n["w"]) - abs(w))))
    grid_w = n["w"][at]
    assert n["closed_form"][at] == pytest.approx(_brute_width(grid_w, b), abs=3e-5)
    assert n["numeric"][at] == pytest.approx(n["closed_form"][at], abs=1e-12)


def test_optimum_is_near_6_9_and_the_brute_force_maximum(result):
    opt = result.numbers["optimum"]
    ws = np.linspace(6.5, 7.3, 33)
    best = ws[np.argmax([_brute_width(v, a_step=2e-6) for v in ws])]
    assert opt["weight"] == pytest.approx(6.9, abs=0.05) and abs(opt["weight"] - best) <= 0.05
    assert opt["width"] == pytest.approx(_brute_width(opt["weight"], a_step=2e-6), abs=1e-5)
    assert max(result.numbers["closed_form"]) <= opt["width"] + 1e-12 and result.holds


def test_no_growth_below_four_and_tanh_from_one(result):
    n = result.numbers
    for w, c, t in zip(n["w"], n["closed_form"], n["tanh"]):
        if abs(w - 4) > 1e-9:
            assert (c == 0) == (w < 4)
        if abs(w - 1) > 1e-9:
            assert (t == 0) == (w < 1)


def test_bad_grid_is_a_config_error():
    with pytest.raises(ConfigError) as exc:
        interval.EXPERIMENT(w_max=3)
    assert exc.value.param == "w_max"

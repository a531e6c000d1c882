"""The regularisation experiment: the polynomial fits against NumPy/scikit-learn, the claim on the quick numbers."""

import numpy as np
import pytest

from gradwatch.errors import ConfigError
from gradwatch.lab.experiments import get
from gradwatch.lab.experiments.regularization import (RegularizationConfig, evaluate_polynomial, fit_polynomial,
                                                      polynomial_part)


def test_least_squares_fit_equals_numpy_polyfit():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 20), rng.normal(size=20)
    for degree in (1, 3, 7):
        ours = fit_polynomial(x, y, degree)
        ref = np.polyfit(x, y, degree)[::-1]  # numpy: highest power first
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("lam", [1e-4, 1e-1, 10.0])
def test_l2_fit_equals_sklearn_ridge(lam):
    """mean (y − f)² + λ/2 Σ w² with an unpenalised intercept is scikit-learn's Ridge with α = nλ/2."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, 25), rng.normal(size=25)
    feats = x[:, None] ** np.arange(1, 10)[None, :]
    ref = Ridge(alpha=len(x) * lam / 2, solver="svd").fit(feats, y)
    ours = fit_polynomial(x, y, 9, lam)
    np.testing.assert_allclose(ours[1:], ref.coef_, rtol=1e-5, atol=1e-7)
    assert ours[0] == pytest.approx(ref.intercept_, abs=1e-7)
    np.testing.assert_allclose(evaluate_polynomial(ours, x), ref.predict(feats), atol=1e-7)


def test_degree_must_stay_below_the_number_of_points():
    with pytest.raises(ConfigError, match="degrees"):
        polynomial_part(RegularizationConfig(n_points=10, degrees=[1, 3, 12]))
    with pytest.raises(ConfigError, match="degrees"):
        RegularizationConfig(degrees=[3, 1, 5])


def test_quick_run_shows_under_and_over_fitting_and_every_remedy_helping(tmp_path):
    res = get("regularization")(quick=True, store=str(tmp_path / "runs.sqlite"))
    poly, net = res.numbers["polynomial"], res.numbers["nets"]
    degrees, tr, te = poly["degrees"], poly["degree_train_mse"], poly["degree_test_mse"]
    # training error never rises with the degree (nested least-squares models)
    assert all(b <= a * (1 + 1e-9) for a, b in zip(tr, tr[1:]))
    # test error: the linear fit under-fits and the highest degree over-fits, both ≥ 3× the best
    best = min(te)
    assert te[0] > 3 * best and te[-1] > 3 * best and degrees[int(np.argmin(te))] in (3, 5, 7)
    # L2 on the highest degree: some λ > 0 beats λ = 0 by 10×, and the largest λ under-fits (≥ 2× best)
    lte = poly["l2_test_mse"]
    assert min(lte[1:]) < 0.1 * lte[0] and lte[-1] > 2 * min(lte)
    # the nets, on every seed: both remedies end below the unregularised test loss by ≥ 3 %; the unregularised
    # net has over-fitted (train loss ≪ noise floor ≤ test loss)
    none = np.array(net["none"]["final_test_loss"])
    assert len(none) >= 2
    for arm in ("dropout", "early_stopping"):
        assert np.all(np.array(net[arm]["final_test_loss"]) < 0.97 * none), arm
    assert max(net["none"]["final_train_loss"]) < 0.05 * net["noise_floor"] < min(none)
    assert res.holds and len(res.run_ids) == 3 * len(none)

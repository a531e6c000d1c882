"""Mean-field predictions against wide random networks (width 1000) and closed forms."""

import math

import numpy as np
import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import get_activation, numpy_activation
from gradwatch.theory.meanfield import (chi1, correlation_map, critical_line, critical_sigma_w2, length_map, mean_field,
                                        phase_diagram, q_star)

WIDTH = 1000


def _wide_net(activation, sw2, sb2, *, depth, batch, seed, x=None):
    """Pre-activations h^1 … h^depth of a random net W ~ N(0, σ_w²/N), b ~ N(0, σ_b²), with ∂L/∂h^l for
    L = Σ g·φ(h^depth), g ~ N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    act = get_activation(activation)
    z = torch.randn(batch, WIDTH, generator=g, dtype=torch.float64) if x is None else x
    z.requires_grad_()
    hs = []
    for _ in range(depth):
        W = torch.randn(WIDTH, WIDTH, generator=g, dtype=torch.float64) * math.sqrt(sw2 / WIDTH)
        h = z @ W.T + torch.randn(WIDTH, generator=g, dtype=torch.float64) * math.sqrt(sb2)
        h.retain_grad()
        hs.append(h)
        z = act(h)
    (z * torch.randn(z.shape, generator=g, dtype=torch.float64)).sum().backward()
    return hs


# points where the length map contracts quickly (slope ≤ 0.6), so that finite-width noise does not pile up
@pytest.mark.parametrize("activation, sw2, sb2", [("tanh", 1.5, 0.05), ("tanh", 3.0, 0.3), ("relu", 1.0, 0.1),
                                                  ("elu", 0.8, 0.2), ("sigmoid", 4.0, 0.1)])
def test_q_star_is_the_mean_squared_preactivation_of_a_wide_net(activation, sw2, sb2):
    q = q_star(activation, sw2, sb2)
    # inputs scaled so that layer 1 starts at the predicted q*: were it wrong, the net would drift to the true
    # fixed point within a few ξ_q layers (ξ_q < 2 here) and layers 4–12 would show it.
    x = torch.randn(2, WIDTH, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x *= math.sqrt((q - sb2) / sw2)
    # finite-width noise (≈ √(2/N) per layer, carried along by the length map; ≈ 2 % per net) is averaged
    deep = [np.mean([(h.detach() ** 2).mean().item() for h in _wide_net(activation, sw2, sb2, depth=12, batch=2,
                                                                         seed=s, x=x.clone())[3:]]) for s in range(3)]
    assert np.mean(deep) == pytest.approx(q, rel=0.05)


@pytest.mark.parametrize("sw2, sb2", [(1.5, 0.1), (0.5, 0.3), (1.9, 0.02)])
def test_relu_q_star_closed_form(sw2, sb2):
    """q = σ_w² q/2 + σ_b² ⇒ q* = σ_b²/(1 − σ_w²/2), and χ₁ = σ_w²/2."""
    mf = mean_field("relu", sw2, sb2)
    assert mf.q_star == pytest.approx(sb2 / (1 - sw2 / 2), rel=1e-10)
    assert mf.chi1 == pytest.approx(sw2 / 2, rel=1e-12)


@pytest.mark.parametrize("activation, sw2, sb2", [("tanh", 1.5, 0.05), ("tanh", 0.7, 0.1), ("tanh", 3.0, 0.3),
                                                  ("relu", 1.5, 0.1), ("relu", 2.5, 0.1), ("sigmoid", 4.0, 0.1),
                                                  ("selu", 1.0, 0.0)])
def test_chi1_predicts_whether_gradients_shrink_or_grow(activation, sw2, sb2):
    mf = mean_field(activation, sw2, sb2)
    hs = _wide_net(activation, sw2, sb2, depth=24, batch=2, seed=1)
    sq = np.array([(h.grad ** 2).sum().item() for h in hs])  # ‖∂L/∂h^l‖²
    per_layer = math.exp(np.mean(np.log(sq[8:-1] / sq[9:])))  # geometric mean of ‖δ_l‖²/‖δ_{l+1}‖²
    assert (per_layer < 1) == (mf.chi1 < 1) and (per_layer > 1) == (mf.chi1 > 1)
    assert per_layer == pytest.approx(mf.chi1, rel=0.05)


def test_chaotic_inputs_decorrelate_to_c_star():
    mf = mean_field("tanh", 3.0, 0.3)
    assert mf.phase == "chaotic" and mf.c_star < 1
    g = torch.Generator().manual_seed(5)
    a = torch.randn(WIDTH, generator=g, dtype=torch.float64)
    x = torch.stack([a, 0.9 * a + math.sqrt(1 - 0.81) * torch.randn(WIDTH, generator=g, dtype=torch.float64)])
    cs = [(h[0] @ h[1] / (h[0].norm() * h[1].norm())).item()
          for s in range(3) for h in _wide_net("tanh", 3.0, 0.3, depth=20, batch=2, seed=s, x=x.clone())[10:]]
    assert np.mean(cs) == pytest.approx(mf.c_star, abs=0.03)


@pytest.mark.parametrize("activation, sw2, sb2", [("tanh", 1.5, 0.05), ("tanh", 3.0, 0.3), ("elu", 1.5, 0.1),
                                                  ("sigmoid", 4.0, 0.1), ("gelu", 2.0, 0.1)])
def test_xi_q_is_the_slope_of_the_length_map_at_q_star(activation, sw2, sb2):
    """ξ_q⁻¹ = −ln F'(q*): the Stein-identity integral equals a central difference of the length map."""
    mf = mean_field(activation, sw2, sb2)
    act, q, h = numpy_activation(activation), mf.q_star, 1e-5 * mf.q_star
    slope = (length_map(act, sw2, sb2, q + h) - length_map(act, sw2, sb2, q - h)) / (2 * h)
    assert math.exp(-1 / mf.xi_q) == pytest.approx(slope, rel=1e-6)


def test_xi_c_in_the_chaotic_phase_is_the_slope_of_the_correlation_map():
    mf = mean_field("tanh", 3.0, 0.3)
    act, c, h = numpy_activation("tanh"), mf.c_star, 1e-5
    slope = (correlation_map(act, 3.0, 0.3, mf.q_star, c + h) - correlation_map(act, 3.0, 0.3, mf.q_star, c - h)) / (2 * h)
    # dc^{l+1}/dc^l = σ_w² E[φ'(u₁)φ'(u₂)] (Poole et al. 2016), so ξ_c = −1/ln(slope)
    assert mf.xi_c == pytest.approx(-1 / math.log(slope), rel=1e-5)
    assert correlation_map(act, 3.0, 0.3, mf.q_star, c) == pytest.approx(c, abs=1e-10)


def test_ordered_xi_c_is_minus_one_over_log_chi1():
    mf = mean_field("tanh", 1.5, 0.05)
    assert mf.phase == "ordered" and mf.c_star == 1.0
    assert mf.xi_c == pytest.approx(-1 / math.log(mf.chi1), rel=1e-12)
    assert mf.trainable_depth == pytest.approx(6 * mf.xi_c)


def test_tanh_critical_line_at_zero_bias_variance_is_one():
    # χ₁ − 1 = O((σ_w² − 1)²) just above 1 (q* ≈ (σ_w² − 1)/(2σ_w²)), so the root is known to ≈ √ε only
    assert critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("sb2", [0.0, 0.3, 1.0])
def test_relu_critical_line_is_two(sb2):
    assert critical_sigma_w2("relu", sb2) == pytest.approx(2.0, rel=1e-9)


def test_tanh_critical_line_moves_right_with_bias_and_is_critical():
    w = critical_sigma_w2("tanh", 0.05)
    assert 1.0 < w < critical_sigma_w2("tanh", 0.5)
    assert mean_field("tanh", w, 0.05).phase == "critical"
    assert mean_field("tanh", w * 0.9, 0.05).phase == "ordered"
    assert mean_field("tanh", w * 1.1, 0.05).phase == "chaotic"


@pytest.mark.parametrize("sw2", [0.5, 1.5, 3.0])
def test_chi1_alone_is_the_closed_form_for_relu_and_mean_fields_for_tanh(sw2):
    assert chi1("relu", sw2, 0.1) == pytest.approx(sw2 / 2, rel=1e-10)  # σ_w² ∫Dz 1[z > 0] = σ_w²/2
    assert chi1("tanh", sw2, 0.05) == mean_field("tanh", sw2, 0.05).chi1


def test_critical_line_is_nan_where_the_range_holds_no_crossing():
    line = critical_line("relu", [0.0, 0.5], lo=0.5, hi=8.0) + critical_line("relu", [0.0], lo=3.0, hi=8.0)
    assert line[:2] == [pytest.approx(2.0, rel=1e-9)] * 2 and math.isnan(line[2])


def test_gradient_growth_is_chi1_to_the_depth():
    mf = mean_field("relu", 1.5, 0.1)
    assert mf.gradient_growth(10) == pytest.approx(0.75 ** 10, rel=1e-10)
    assert mf.to_dict(depth=10)["gradient_norm_ratio_first_to_last"] == pytest.approx(0.75 ** 5, rel=1e-10)


def test_phase_diagram_holds_chi1_and_the_critical_line():
    pd = phase_diagram("relu", np.array([1.0, 3.0]), np.array([0.0, 0.5]))
    np.testing.assert_allclose(pd.chi1, [[0.5, 1.5], [0.5, 1.5]], rtol=1e-10)
    np.testing.assert_allclose(pd.critical_sigma_w2, [2.0, 2.0], rtol=1e-9)


@pytest.mark.parametrize("param, kwargs", [("sigma_b2", {"sigma_w2": 1.0, "sigma_b2": -0.1}),
                                           ("sigma_w2", {"sigma_w2": -1.0, "sigma_b2": 0.1}),
                                           ("sigma_w2", {"sigma_w2": float("nan"), "sigma_b2": 0.1})])
def test_bad_variances_are_refused(param, kwargs):
    with pytest.raises(ConfigError, match=param):
        mean_field("tanh", **kwargs)


def test_unknown_activation_is_refused():
    with pytest.raises(ConfigError, match="activation='swish'.*tanh"):
        mean_field("swish", 1.0, 0.0)


def test_no_critical_point_in_range_is_reported():
    with pytest.raises(ConfigError, match="sigma_b2.*critical line"):
        critical_sigma_w2("sigmoid", 0.1, lo=0.1, hi=2.0)

"""gradwatch.theory.chain: the scalar chain equals autograd on the same network and never exceeds its bounds."""

import math

import numpy as np
import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import get_activation
from gradwatch.theory.chain import chain


def _autograd(weights, biases, x, activation, target):
    act = get_activation(activation).make().double()
    w = torch.tensor(weights, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(biases, dtype=torch.float64, requires_grad=True)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    a = xt
    for j in range(len(weights)):
        a = act(w[j] * a + b[j])
    (0.5 * (a - target) ** 2).backward()  # seed 001's L(y, t) = ½(y − t)²
    return w.grad.numpy(), b.grad.numpy(), xt.grad.item()


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "elu", "selu", "softsign"])
@pytest.mark.parametrize("seed", range(3))
def test_chain_equals_autograd(activation, seed):
    rng = np.random.default_rng(seed)
    w, b, x, t = rng.normal(0, 2, 5).tolist(), rng.normal(0, 1, 5).tolist(), float(rng.normal()), 0.3
    res = chain(w, b, x, activation, loss_grad=lambda y: y - t)
    gw, gb, gx = _autograd(w, b, x, activation, t)
    np.testing.assert_allclose(res.grad_w, gw, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.grad_b, gb, rtol=1e-12, atol=1e-15)
    assert res.grad_x == pytest.approx(gx, rel=1e-12, abs=1e-15)


def test_seed_000_product_of_factors():
    """∂C/∂b_1 = σ'(z_1) × w_2σ'(z_2) × w_3σ'(z_3) × w_4σ'(z_4) × ∂C/∂a_4."""
    res = chain([0.5, -1.2, 2.0, 0.8], [0.1, 0.0, -0.3, 0.2], x=0.7, loss_grad=0.9)
    s = get_activation("sigmoid")
    d1 = s.derivative(torch.tensor(res.z[0], dtype=torch.float64)).item()
    assert res.grad_b[0] == pytest.approx(d1 * math.prod(res.factors[1:]) * 0.9, rel=1e-14)
    assert res.grad_b[2] == pytest.approx(res.factors[2] / res.weights[2] * res.factors[3] * 0.9, rel=1e-14)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "elu", "selu"])
def test_gradients_never_exceed_their_bounds(activation):
    rng = np.random.default_rng(0)
    for _ in range(200):
        L = int(rng.integers(1, 9))
        res = chain(rng.normal(0, 3, L), rng.normal(0, 2, L), float(rng.normal(0, 2)), activation,
                    loss_grad=float(rng.normal()))
        assert all(abs(g) <= bnd * (1 + 1e-12) for g, bnd in zip(res.grad_b, res.bound_b))
        assert all(abs(g) <= bnd * (1 + 1e-12) for g, bnd in zip(res.grad_w, res.bound_w))
        assert abs(res.grad_x) <= res.bound_x * (1 + 1e-12)


def test_bound_is_attained_where_every_derivative_is_maximal():
    """tanh with x = 0 and no biases keeps every z_j = 0, where σ' = max σ' = 1: the bound is tight."""
    res = chain([0.9, -1.7, 2.5, 0.4], x=0.0, activation="tanh", loss_grad=-2.0)
    np.testing.assert_allclose(np.abs(res.grad_b), res.bound_b, rtol=1e-14)


def test_seed_001_five_layer_bound():
    """Seed 001: |∂E/∂x| ≤ 2·(1/4)^5·w_1w_2w_3w_4w_5 with |y − t| ≤ 2."""
    w = [1.5, -2.0, 0.7, 3.0, 1.1]
    res = chain(w, x=0.4, loss_grad=2.0)
    assert res.bound_x == pytest.approx(2 * 0.25 ** 5 * abs(math.prod(w)), rel=1e-14)
    assert abs(res.grad_x) < res.bound_x


def test_empty_weights_are_refused():
    with pytest.raises(ConfigError, match=r"weights=\[\].*at least one"):
        chain([])


def test_bias_count_must_match():
    with pytest.raises(ConfigError, match=r"biases=\[0.0\].*expected 2 biases"):
        chain([1.0, 2.0], [0.0])


def test_non_finite_weights_are_refused():
    with pytest.raises(ConfigError, match="weights.*finite"):
        chain([1.0, float("nan")])


def test_unknown_activation_is_refused():
    with pytest.raises(ConfigError, match="activation='step'"):
        chain([1.0], activation="step")

"""Seed 002's RNN products against autograd and Hochreiter's bound; Jacobian spectra against explicit products."""

import numpy as np
import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.lab.models import initialize, linear_layers, mlp
from gradwatch.nn.activations import get_activation
from gradwatch.reference import Network, forward
from gradwatch.theory import jacobian_spectrum, rnn_bounds, rnn_trajectory


def _rnn(scale, n=8, T=15, seed=0, activation="tanh"):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, n))
    W *= scale / np.linalg.norm(W, 2)
    u, W_in = rng.normal(size=(T, 3)), rng.normal(size=(n, 3))
    return W, rnn_trajectory(W, rng.normal(size=n), u, W_in, rng.normal(size=n) * 0.1, activation)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_pascanu_products_equal_autograd(activation):
    W, states = _rnn(1.5, activation=activation)
    res = rnn_bounds(W, activation, states, lags=6)
    T = len(states) - 1
    act, Wt = get_activation(activation).make().double(), torch.tensor(W)
    for q in range(1, 7):
        def roll(xk, q=q):  # x_{T−q} → x_T with the same inputs (recovered from the stored states)
            x = xk
            for i in range(T - q + 1, T + 1):
                drive = torch.tensor(states[i] - W @ get_activation(activation).make().double()(
                    torch.tensor(states[i - 1])).numpy())
                x = Wt @ act(x) + drive
            return x
        J = torch.autograd.functional.jacobian(roll, torch.tensor(states[T - q]))
        assert res.actual[q - 1] == pytest.approx(torch.linalg.matrix_norm(J, 2).item(), rel=1e-10)


@pytest.mark.parametrize("scale, activation", [(0.8, "tanh"), (1.0, "tanh"), (2.5, "tanh"), (3.9, "sigmoid"),
                                               (6.0, "sigmoid")])
def test_products_never_exceed_hochreiters_bound(scale, activation):
    W, states = _rnn(scale, activation=activation, seed=1)
    res = rnn_bounds(W, activation, states)
    assert np.all(np.array(res.actual) <= np.array(res.bound) * (1 + 1e-10))


def test_regimes_follow_the_largest_singular_value():
    assert rnn_bounds(_rnn(0.9)[0], "tanh").regime == "vanishing"
    assert rnn_bounds(_rnn(1.1)[0], "tanh").regime == "may explode"
    assert rnn_bounds(_rnn(3.9)[0], "sigmoid").regime == "vanishing"  # γ = 1/4: needs λ₁ > 4
    W, states = _rnn(0.9, T=40)
    assert rnn_bounds(W, "tanh", states, lags=40).actual[-1] < 0.9 ** 40 * (1 + 1e-10)


def test_non_square_recurrent_matrix_is_refused():
    with pytest.raises(ConfigError, match="W_rec.*square"):
        rnn_bounds(np.ones((2, 3)))


def test_empty_recurrent_matrix_is_refused():
    with pytest.raises(ConfigError, match="W_rec"):
        rnn_bounds(np.ones((0, 0)))


def test_linear_network_jacobian_is_the_weight_product():
    model = initialize(mlp([6, 9, 7, 5], "linear"), "xavier_normal", generator=torch.Generator().manual_seed(0))
    model = model.double()
    product = np.eye(6)
    for _, m in linear_layers(model):
        product = m.weight.detach().numpy() @ product
    spec = jacobian_spectrum(model, torch.randn(6, dtype=torch.float64))
    np.testing.assert_allclose(spec.singular_values, np.linalg.svd(product, compute_uv=False), rtol=1e-10)


def test_orthogonal_linear_network_is_an_isometry():
    model = initialize(mlp([16] * 6, "linear"), "orthogonal", generator=torch.Generator().manual_seed(1)).double()
    spec = jacobian_spectrum(model, torch.randn(1, 16, dtype=torch.float64))
    np.testing.assert_allclose(spec.singular_values, 1.0, rtol=1e-6)  # weights were drawn in float32
    assert spec.condition_number == pytest.approx(1.0, rel=1e-6)


def test_tanh_jacobian_equals_the_reference_product():
    """J = W_n diag(σ'(v_{n−1})) W_{n−1} ⋯ diag(σ'(v_1)) W_1, from the NumPy reference's stored v_j."""
    model = initialize(mlp([5, 8, 8, 3], "tanh"), "xavier_normal", bias=0.1,
                       generator=torch.Generator().manual_seed(2)).double()
    layers = [m for _, m in linear_layers(model)]
    net = Network([m.weight.detach().numpy() for m in layers], [m.bias.detach().numpy() for m in layers], "tanh")
    x = np.random.default_rng(3).normal(size=5)
    fp = forward(net, x)
    J = net.weights[0]
    for j in range(1, net.n):
        J = net.weights[j] @ ((1 - np.tanh(fp.v[j][:, 0]) ** 2)[:, None] * J)
    spec = jacobian_spectrum(model, torch.tensor(x))
    np.testing.assert_allclose(spec.singular_values, np.linalg.svd(J, compute_uv=False), rtol=1e-10)
    assert spec.mean_squared == pytest.approx(np.mean(np.linalg.svd(J, compute_uv=False) ** 2), rel=1e-10)


def test_a_batch_of_inputs_is_refused():
    with pytest.raises(ConfigError, match=r"x.shape=\(2, 4\)"):
        jacobian_spectrum(mlp([4, 3]), torch.randn(2, 4))

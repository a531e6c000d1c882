"""variance_propagation against wide random networks (width 1000) and seed 001's closed-form products."""

import math

import numpy as np
import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.lab.models import initialize, linear_layers, mlp
from gradwatch.nn.init import INITS
from gradwatch.theory.init_variance import WEIGHT_VARIANCE, variance_propagation, weight_variance

SIZES = [1000] * 9  # 1000 inputs, 7 hidden layers of 1000 and an output layer of 1000


def _measured_weight_grad_var(sizes, activation, init, nets=4, examples=4, seed=0):
    """Var of the entries of ∂L/∂W per layer, one example per backward pass (L = gᵀ m(x), g ~ N(0, I)),
    averaged over examples and independently drawn networks."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(nets):
        model = initialize(mlp(sizes, activation), init, generator=gen)
        for _ in range(examples):
            y = model(torch.randn(1, sizes[0], generator=gen))
            model.zero_grad()
            (y * torch.randn(y.shape, generator=gen)).sum().backward()
            out.append([m.weight.grad.var().item() for _, m in linear_layers(model)])
    return np.mean(out, axis=0)


@pytest.mark.parametrize("activation, init", [("tanh", "xavier_uniform"), ("relu", "he_normal")])
def test_prediction_matches_wide_random_networks(activation, init):
    predicted = np.array(variance_propagation(SIZES, activation, init).weight_grad_var)
    measured = _measured_weight_grad_var(SIZES, activation, init)
    np.testing.assert_array_less(np.abs(measured / predicted - 1), 0.2)


def test_xavier_relu_is_predicted_to_vanish_and_does():
    """He et al.: Xavier's Var W = 1/n loses a factor 2 per ReLU layer, in both directions."""
    pred = variance_propagation(SIZES, "relu", "xavier_normal")
    measured = _measured_weight_grad_var(SIZES, "relu", "xavier_normal", nets=2)
    np.testing.assert_array_less(np.abs(measured / np.array(pred.weight_grad_var) - 1), 0.2)
    assert pred.preact_var[-1] == pytest.approx(pred.preact_var[0] / 2 ** 7, rel=1e-10)


def test_relu_backward_variance_is_seed_001s_product():
    """D[∂L/∂s^i] = D[∂L/∂s^d] Π_k ½ n_{k+1} D[W^k] for ReLU, with unequal widths and a normal init."""
    sizes = [50, 80, 30, 120, 60, 10]
    pred = variance_propagation(sizes, "relu", "normal", init_std=0.07, output_grad_var=2.0)
    for i in range(len(sizes) - 1):  # layer i + 1 (0-based i)
        product = math.prod(0.5 * sizes[k + 1] * 0.07 ** 2 for k in range(i + 1, len(sizes) - 1))
        assert pred.backward_var[i] == pytest.approx(2.0 * product, rel=1e-10)


def test_linear_forward_variance_is_seed_001s_product():
    """D[z^i] = D[x] Π_k n_k D[W^k] (seed 001's Xavier derivation, φ the identity)."""
    sizes = [40, 70, 20, 90]
    pred = variance_propagation(sizes, "linear", "xavier_normal", input_var=3.0)
    for i in range(len(sizes) - 1):
        product = math.prod(sizes[k] * 2 / (sizes[k] + sizes[k + 1]) for k in range(i + 1))
        assert pred.preact_var[i] == pytest.approx(3.0 * product, rel=1e-12)


@pytest.mark.parametrize("init", list(WEIGHT_VARIANCE))
def test_weight_variance_matches_the_init_functions(init):
    w = torch.empty(300, 500, dtype=torch.float64)
    kwargs = {"std": 0.05} if init == "normal" else {}
    INITS[init](w, generator=torch.Generator().manual_seed(0), **kwargs)
    assert w.var().item() == pytest.approx(weight_variance(init, 500, 300, init_std=0.05), rel=0.05)


def test_ratio_to_output_ends_at_one():
    assert variance_propagation([10, 20, 20, 5], "sigmoid", "xavier_uniform").ratio_to_output[-1] == 1.0


@pytest.mark.parametrize("sizes", [[], [10], [10, 0, 5], [10, 2.5, 3]])
def test_bad_sizes_are_refused(sizes):
    with pytest.raises(ConfigError, match="sizes"):
        variance_propagation(sizes)


def test_negative_input_variance_is_refused():
    with pytest.raises(ConfigError, match="input_var=-1.*≥ 0"):
        variance_propagation([10, 10, 2], input_var=-1.0)


def test_unknown_init_is_refused():
    with pytest.raises(ConfigError, match="init='lecun'.*xavier_uniform"):
        variance_propagation([10, 10, 2], init="lecun")


def test_unknown_activation_is_refused():
    with pytest.raises(ConfigError, match="activation='swish'"):
        variance_propagation([10, 10, 2], activation="swish")

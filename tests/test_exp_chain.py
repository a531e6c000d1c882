"""chain: the per-layer medians against a vectorised NumPy backward pass, the examples against autograd."""

import numpy as np
import pytest
import torch

from gradwatch.lab.experiments import chain as ch


def _numpy_grads(d, activation):
    """∂C/∂b_j for every chain at once: forward, then δ_j = σ'(z_j) w_{j+1} δ_{j+1}, δ_L = σ'(z_L)(a_L − t)."""
    w, b = d.weights, d.biases
    a, zs = d.x.copy(), []
    for j in range(w.shape[1]):
        zs.append(w[:, j] * a + b[:, j])
        a = 1 / (1 + np.exp(-zs[-1])) if activation == "sigmoid" else np.maximum(zs[-1], 0)
    deriv = [(s := 1 / (1 + np.exp(-z))) * (1 - s) if activation == "sigmoid" else (z > 0).astype(float) for z in zs]
    delta = [None] * w.shape[1]
    upstream = a - d.t
    for j in reversed(range(w.shape[1])):
        delta[j] = deriv[j] * upstream
        upstream = w[:, j] * delta[j]
    return np.stack(delta, 1), upstream  # [samples, depth], ∂C/∂x


@pytest.fixture(scope="module")
def result():
    return ch.EXPERIMENT(quick=True, seed=0)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_medians_equal_a_vectorised_numpy_backward(result, activation):
    cfg = ch.ChainConfig(quick=True, seed=0)
    grads, grad_x = _numpy_grads(ch.draw(cfg), activation)
    s = result.numbers["activations"][activation]
    np.testing.assert_allclose(s["median_abs_grad_b"], np.median(np.abs(grads), 0), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(s["share_zero_grad_b"], (grads == 0).mean(0))


def test_example_chains_equal_autograd(result):
    for ex in result.numbers["examples"]:
        w = torch.tensor(ex["weights"], dtype=torch.float64)
        b = torch.tensor(ex["biases"], dtype=torch.float64, requires_grad=True)
        x = torch.tensor(ex["x"], dtype=torch.float64, requires_grad=True)
        a = x
        for j in range(len(w)):
            a = torch.sigmoid(w[j] * a + b[j])
        gb, gx = torch.autograd.grad(0.5 * (a - ex["t"]) ** 2, (b, x))
        np.testing.assert_allclose(ex["grad_b"], gb.numpy(), rtol=1e-12)
        assert ex["grad_x"] == pytest.approx(gx.item(), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_vanishes_within_the_bounds_and_relu_dies(seed):
    r = ch.EXPERIMENT(quick=True, seed=seed, samples=500) if seed else ch.EXPERIMENT(quick=True, seed=0)
    sig, relu = r.numbers["activations"]["sigmoid"], r.numbers["activations"]["relu"]
    g = sig["median_abs_grad_b"]
    assert all(5 * a < b for a, b in zip(g, g[1:]))   # > 5× per layer (median factor ≈ 0.13 < 1/4)
    assert sig["bound_violations"] == 0 and relu["bound_violations"] == 0 and sig["seed001_bound_violations"] == 0
    assert max(sig["max_ratio_to_bound"]) <= 1 + 1e-12 and min(sig["share_factor_below_quarter"]) > 0.7
    assert r.numbers["relu_alive_factor_median"] == pytest.approx(0.674, abs=0.08)   # median |N(0,1)| = 0.6745
    assert relu["share_zero_grad_b"][0] > 0.5 and r.holds


def test_zero_biases_and_depth_four_follow_seed_000():
    r = ch.EXPERIMENT(quick=True, depth=4, bias_std=0.0, samples=300)
    assert len(r.numbers["activations"]["sigmoid"]["median_factor"]) == 4
    assert r.numbers["activations"]["sigmoid"]["bound_violations"] == 0

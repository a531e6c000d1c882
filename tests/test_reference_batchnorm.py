"""gradwatch.reference.batchnorm: seed 001's formulas against torch (autograd, BatchNorm1d) in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradwatch.errors import ConfigError
from gradwatch.reference import (batchnorm_backward, batchnorm_forward, batchnorm_inference, fold_batchnorm,
                                 update_running)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(7, 10))  # 7 units, mini-batch of 10 (columns)
    return x, rng.uniform(0.5, 2.0, 7), rng.normal(size=7), rng.normal(size=(7, 10))


def test_forward_normalises_each_unit_over_the_batch(batch):
    x, gamma, beta, _ = batch
    y, cache = batchnorm_forward(x, np.ones(7), np.zeros(7), eps=0.0)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1), 1, rtol=1e-12)
    y, _ = batchnorm_forward(x, gamma, beta)
    expected = F.batch_norm(torch.tensor(x.T), None, None, torch.tensor(gamma), torch.tensor(beta),
                            training=True, eps=1e-5).numpy().T
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_backward_formulas_equal_autograd(batch):
    x, gamma, beta, dy = batch
    y, cache = batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = batchnorm_backward(dy, cache)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x.T, gamma, beta))
    out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5)
    out.backward(torch.tensor(dy.T))
    np.testing.assert_allclose(dx, xt.grad.numpy().T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_input_gradient_sums_to_zero_over_the_batch(batch):
    """A shift of every x_i leaves μ-centred values unchanged, so Σ_i ∂ℓ/∂x_i = 0 (a consequence of ∂ℓ/∂μ)."""
    x, gamma, beta, dy = batch
    dx, _, _ = batchnorm_backward(dy, batchnorm_forward(x, gamma, beta)[1])
    np.testing.assert_allclose(dx.sum(axis=1), 0, atol=1e-12)


def test_running_averages_equal_torch_batchnorm1d():
    rng = np.random.default_rng(1)
    layer = torch.nn.BatchNorm1d(5, momentum=0.2).double()
    mean, var = np.zeros(5), np.ones(5)
    for _ in range(4):
        x = rng.normal(1.0, 2.0, size=(5, 8))
        layer(torch.tensor(x.T))
        mean, var = update_running(mean, var, batchnorm_forward(x, np.ones(5), np.zeros(5))[1], alpha=0.2)
    np.testing.assert_allclose(mean, layer.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var, layer.running_var.numpy(), rtol=1e-12)


def test_inference_is_one_linear_map_equal_to_torch_eval(batch):
    x, gamma, beta, _ = batch
    rng = np.random.default_rng(2)
    mean, var = rng.normal(size=7), rng.uniform(0.5, 2.0, 7)
    scale, shift = fold_batchnorm(gamma, beta, mean, var)
    folded = scale[:, None] * x + shift[:, None]
    np.testing.assert_allclose(folded, batchnorm_inference(x, gamma, beta, mean, var), rtol=1e-12)
    layer = torch.nn.BatchNorm1d(7).double().eval()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(gamma)), layer.bias.copy_(torch.tensor(beta))
        layer.running_mean.copy_(torch.tensor(mean)), layer.running_var.copy_(torch.tensor(var))
        expected = layer(torch.tensor(x.T)).numpy().T
    np.testing.assert_allclose(folded, expected, rtol=1e-12, atol=1e-12)


def test_a_batch_of_one_is_refused():
    with pytest.raises(ConfigError, match="batch_size=1.*at least 2"):
        batchnorm_forward(np.ones((3, 1)), np.ones(3), np.zeros(3))


def test_running_rate_outside_unit_interval_is_refused(batch):
    x, gamma, beta, _ = batch
    with pytest.raises(ConfigError, match="alpha=1.5"):
        update_running(np.zeros(7), np.ones(7), batchnorm_forward(x, gamma, beta)[1], alpha=1.5)

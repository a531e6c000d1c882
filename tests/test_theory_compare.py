"""compare_at_init: watch's measured per-layer gradient norms beside the variance-propagation prediction."""

import numpy as np
import pytest

from gradwatch.errors import ConfigError
from gradwatch.lab.models import initialize, linear_layers, mlp
from gradwatch.theory.compare import compare_at_init


@pytest.mark.parametrize("activation, init", [("tanh", "xavier_uniform"), ("relu", "he_normal"),
                                              ("sigmoid", "xavier_uniform")])
def test_measured_norms_match_predicted(activation, init):
    res = compare_at_init(256, 6, activation, init, nets=2, examples=4)
    assert res.layers == [f"hidden{i}" for i in range(1, 7)] + ["output"]
    ratio_sq = np.array(res.measured_over_predicted) ** 2  # a ratio of variances
    np.testing.assert_array_less(np.abs(ratio_sq - 1), 0.2)


def test_measured_norms_are_the_weight_gradient_norms():
    """watch's grad_norm (weights only) equals ‖p.grad‖ computed here for a single example."""
    import torch

    res = compare_at_init(32, 2, "tanh", "xavier_uniform", nets=1, examples=1, seed=3)
    gen = torch.Generator().manual_seed(3)
    model = initialize(mlp(res.sizes, "tanh"), "xavier_uniform", generator=gen)
    out = model(torch.randn(1, 32, generator=gen))
    (out * torch.randn(out.shape, generator=gen)).sum().backward()
    expected = [m.weight.grad.norm().item() for _, m in linear_layers(model)]
    np.testing.assert_allclose(res.measured, expected, rtol=1e-5)


@pytest.mark.parametrize("param", ["width", "depth", "nets", "examples"])
def test_non_positive_sizes_are_refused(param):
    with pytest.raises(ConfigError, match=f"{param}=0"):
        compare_at_init(**{param: 0})

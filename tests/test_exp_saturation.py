"""saturation (Glorot & Bengio 2010): the top sigmoid layer heads for 0 while lower layers stay near 0.5 (two
seeds); back-propagated gradient spreads shrink by 1/√3 per tanh layer under the standard init, checked against
the closed form n·Var W = 1/3 and against a float64 backward written out by hand."""

import math

import numpy as np
import pytest
import torch

from gradwatch.lab.experiments import get
from gradwatch.lab.experiments.probing import backprop_gradients
from gradwatch.lab.models import initialize, mlp


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def result(request, tmp_path_factory):
    return get("saturation")(quick=True, seed=request.param, epochs=2, hist_depth=4,
                             store=str(tmp_path_factory.mktemp("store") / "runs.sqlite"))


def test_top_sigmoid_layer_is_driven_toward_zero(result):
    means = np.array(result.numbers["act_mean"])  # [layers, probes]
    assert abs(means[-1, 0] - 0.5) < 0.05  # starts at σ(≈0)
    assert means[-1].min() < 0.3
    assert means[:-1].min() > 0.45


def test_gradient_spread_shrinks_by_one_over_root_three_with_standard_init(result):
    geo = result.numbers["grad_factor_geomean"]
    standard, normalised = geo.values()
    # Var ∂C/∂z_l = n · Var W · Var ∂C/∂z_{l+1}; U[±1/√n] has Var W = 1/(3n)
    assert standard == pytest.approx(1 / math.sqrt(3), rel=0.15)
    assert normalised == pytest.approx(1.0, abs=0.2)
    assert standard < normalised
    assert result.holds


def test_backprop_gradients_equal_a_hand_written_float64_backward():
    g = torch.Generator().manual_seed(0)
    model = mlp([6, 5, 5, 3], "tanh").double()
    initialize(model, "xavier_uniform", generator=g)
    x = torch.randn(8, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    got = backprop_gradients(model, x, y)
    W = [model.hidden1.weight, model.hidden2.weight, model.output.weight]
    b = [model.hidden1.bias, model.hidden2.bias, model.output.bias]
    z1 = x @ W[0].detach().T + b[0].detach()
    z2 = torch.tanh(z1) @ W[1].detach().T + b[1].detach()
    logits = torch.tanh(z2) @ W[2].detach().T + b[2].detach()
    p = torch.softmax(logits, 1)
    d_out = (p - torch.nn.functional.one_hot(y, 3)) / len(y)  # ∂C/∂logits of the mean cross-entropy
    d2 = (d_out @ W[2].detach()) * (1 - torch.tanh(z2) ** 2)
    d1 = (d2 @ W[1].detach()) * (1 - torch.tanh(z1) ** 2)
    np.testing.assert_allclose(got[0], d1.reshape(-1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(got[1], d2.reshape(-1).numpy(), rtol=1e-10)

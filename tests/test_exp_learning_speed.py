"""learning-speed (seed 000, Nielsen ch. 5): the first hidden layer learns slowest, checked on two seeds; the
watch's ‖∂C/∂b‖ equals a float64 forward/backward written out by hand."""

import math

import numpy as np
import pytest
import torch

from gradwatch.lab.experiments import get
from gradwatch.lab.experiments.learning_speed import nielsen_cost, nielsen_net, train_nielsen


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def result(request, tmp_path_factory):
    return get("learning-speed")(quick=True, seed=request.param, accuracy_epochs=2,
                                 store=str(tmp_path_factory.mktemp("store") / "runs.sqlite"))


def test_bias_gradient_rises_toward_the_output_at_init(result):
    for depth, s in result.numbers["speed"].items():
        g = s["at_init"]
        assert len(g) == int(depth)
        assert all(a < b for a, b in zip(g, g[1:])), (depth, g)
    four = result.numbers["speed"]["4"]["at_init"]
    assert four[-1] / four[0] > 20  # Nielsen: 0.285 / 0.003 ≈ 95


def test_first_layer_is_slowest_over_training(result):
    for s in result.numbers["speed"].values():
        mean = s["mean_over_training"]
        assert mean[0] == min(mean)
        assert s["epochs_first_slowest"] >= 0.6 * s["epochs"]
    assert result.holds


def test_watch_bias_norms_equal_a_hand_written_float64_backward():
    g = torch.Generator().manual_seed(3)
    model = nielsen_net([12, 7, 7, 4], g).double()
    x = torch.rand(50, 12, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (50,), generator=g)
    hist = train_nielsen(model, x, y, eta=0.1, lmbda=5.0, epochs=1, batch=50, generator=g, watch_biases=True)
    # the model was updated once; recompute the init gradient from a fresh copy of the same init
    g2 = torch.Generator().manual_seed(3)
    fresh = nielsen_net([12, 7, 7, 4], g2).double()
    ws = [fresh.hidden1.weight, fresh.hidden2.weight, fresh.output.weight]
    bs = [fresh.hidden1.bias.detach().clone().requires_grad_(), fresh.hidden2.bias.detach().clone().requires_grad_(),
          fresh.output.bias.detach().clone().requires_grad_()]
    a = x
    for w, b in zip(ws[:-1], bs[:-1]):
        a = 1 / (1 + torch.exp(-(a @ w.detach().T + b)))
    out = 1 / (1 + torch.exp(-(a @ ws[-1].detach().T + bs[-1])))
    t = torch.nn.functional.one_hot(y, 4).double()
    cost = -(t * torch.log(out) + (1 - t) * torch.log(1 - out)).sum() / len(y)
    expected = [float(gr.norm()) for gr in torch.autograd.grad(cost, bs)]
    np.testing.assert_allclose(hist.stat("grad_norm")[0], expected, rtol=1e-5)


def test_nielsen_cost_is_the_summed_binary_cross_entropy():
    logits = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([1])
    a = 1 / (1 + math.exp(-2.0))
    assert float(nielsen_cost(logits, y)) == pytest.approx(-math.log(0.5) - math.log(a))

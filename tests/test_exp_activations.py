"""activations (seeds 003, 004): sigmoid vanishes and stalls, the others train; ReLU units die at a large
learning rate on two seeds and LeakyReLU units do not; dead fractions checked against a forward pass by hand."""

import math

import pytest
import torch

from gradwatch.lab.experiments import get
from gradwatch.lab.experiments.probing import activation_stats
from gradwatch.lab.models import mlp


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return get("activations")(quick=True, store=str(tmp_path_factory.mktemp("store") / "runs.sqlite"))


def test_sigmoid_gradients_vanish_and_the_others_do_not(result):
    acts = result.numbers["activations"]
    assert acts["sigmoid"]["span"] > 1e3  # (max σ' = 1/4)^7 ≈ 6e-5 over 7 layers
    for name, a in acts.items():
        if name != "sigmoid":
            assert a["span"] < 30, name


def test_sigmoid_stays_at_chance_while_the_others_train(result):
    acts = result.numbers["activations"]
    sig = acts["sigmoid"]["train_loss"][-1]
    assert sig > 0.95 * math.log(10)
    assert all(a["train_loss"][-1] < 0.9 * math.log(10) for n, a in acts.items() if n != "sigmoid")


def test_relu_units_die_at_a_large_learning_rate_and_leaky_ones_do_not(result):
    dying = result.numbers["dying"]
    assert len(dying["relu"]) == 2
    assert all(d["mean_dead"] > 0.2 for d in dying["relu"])
    assert all(d["mean_dead"] == 0.0 for d in dying["leaky_relu"])
    assert result.holds


def test_dead_fraction_equals_a_hand_count():
    g = torch.Generator().manual_seed(0)
    model = mlp([5, 8, 8, 3], "relu")
    with torch.no_grad():
        model.hidden1.bias[:3] = -100.0  # three units of layer 1 never fire
    x = torch.rand(40, 5, generator=g)
    stats = activation_stats(model, x, ("act_dead",))
    h1 = torch.relu(model.hidden1(x))
    h2 = torch.relu(model.hidden2(h1))
    expected = [float((h == 0).all(0).float().mean()) for h in (h1, h2)]
    assert stats["act_dead"][:2] == pytest.approx(expected)
    assert expected[0] >= 3 / 8

"""Diagnosis on nets whose trouble is known by construction (seed 000/001/004), and its thresholds."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.diagnose import CATALOGUE, Thresholds, diagnose
from gradwatch.errors import ConfigError
from gradwatch.lab.data import load_dataset
from gradwatch.lab.models import initialize, mlp
from gradwatch.probe import History

DEPTH, WIDTH = 8, 64


@pytest.fixture(scope="module")
def digits():
    d = load_dataset("digits", seed=0)
    return d.x_train[:256], d.y_train[:256]


def _train(digits, activation, init, std=0.01, steps=6, lr=0.1, **watch_kw):
    x, y = digits
    model = mlp([64] + [WIDTH] * DEPTH + [10], activation)
    initialize(model, init, init_std=std, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    with gw.watch(model, opt, stats="full", sample_every=2, **watch_kw) as w:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return w


def test_deep_sigmoid_with_small_init_vanishes_in_its_early_layers(digits):
    w = _train(digits, "sigmoid", "normal", std=0.05)
    d = w.diagnose()
    assert not d.healthy
    f = d["vanishing"]
    assert f.layers[0] == "hidden1" and "output" not in f.layers and f.step == 0
    # the evidence is the history's own numbers: hidden1 (the deepest layer) has the relative gradient
    # ‖g‖/‖θ‖ of its own, compared with the best layer's, over the steps of the episode
    h = w.history
    weight = h.stat("weight_norm")
    for t in range(1, len(weight)):  # measured on sampled steps, carried forward
        weight[t] = np.where(np.isnan(weight[t]), weight[t - 1], weight[t])
    rel = h.stat("grad_norm") / weight
    a, b = f.evidence["steps"][0]
    rows = (h.steps >= a) & (h.steps <= b)
    depth = np.asarray(h.meta["depth"], dtype=float)  # from the autograd graph: hidden1 is the farthest
    assert depth[0] == depth.max()
    upper = np.argsort(depth)[:int(np.ceil(len(depth) / 4))]  # the quarter of the layers nearest the loss
    ref = np.median(rel[rows][:, upper], axis=1)
    assert f.evidence["ratio_to_output_side"][0] == pytest.approx(np.median(rel[rows, 0] / ref), rel=1e-6)
    assert rel[0, 0] / np.median(rel[0, upper]) < 1e-2
    # and the decomposition shows the sigmoid's quarter (σ'(0) = 1/4, seed 000)
    assert all(0.2 < a <= 0.25 for a in f.evidence["gain_activation"])
    assert "activation derivative 0.25" in str(f)
    assert f.remedies[0].key == "activation"  # the σ' part is the smaller factor: change the activation first


def test_relu_with_he_init_of_the_same_size_is_healthy(digits):
    d = _train(digits, "relu", "he_normal").diagnose()
    assert d.healthy, str(d)
    assert str(d).startswith("healthy")


def test_large_init_explodes(digits):
    """ReLU with twice He's standard deviation: each layer multiplies the backward signal by ≈ 2."""
    w = _train(digits, "relu", "normal", std=2 * math.sqrt(2 / WIDTH), steps=2, lr=1e-6)
    f = w.diagnose()["exploding"]
    assert "hidden1" in f.layers and f.step == 0
    assert all(gw_ > 1.5 for gw_ in f.evidence["gain_weights"])
    # the weight gradients stay balanced (δ grows toward the input, activations toward the output), so the
    # finding rests on the product of backward gains; check it against autograd on the activations directly
    x, y = digits
    acts, h = [], x
    for name, m in w.model.named_children():
        h = m(h)
        if name.startswith("act"):
            acts.append(h)
    grads = torch.autograd.grad(nn.functional.cross_entropy(h, y), acts + [h])
    reach_hidden1 = (grads[0].norm() / grads[-1].norm()).item()
    line = next(l for l in f.evidence["lines"] if l.startswith("the gradient reaching layer hidden1"))
    assert float(line.split(" is ")[1].split("×")[0]) == pytest.approx(reach_hidden1, rel=0.05)
    assert f.remedies[0].key == "clipping"


def test_dead_relu_layer_is_found(digits):
    x, y = digits
    model = mlp([64, 32, 32, 10], "relu")
    initialize(model, "he_normal", bias=0.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.hidden2.bias.fill_(-100.0)  # every unit of hidden2 is negative for every input
    with gw.watch(model, stats="full", sample_every=1) as w:
        nn.functional.cross_entropy(model(x), y).backward()
        w.step()
    f = w.diagnose()["dead_units"]
    assert f.layers == ["hidden2"] and f.evidence["act_dead"] == [1.0]
    assert f.remedies[0].key == "leaky" and "Bursuc" in f.remedies[0].source


def test_saturated_sigmoid_layer_is_found(digits):
    x, y = digits
    model = mlp([64, 32, 32, 10], "sigmoid")
    initialize(model, "xavier_normal", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.hidden1.weight.mul_(100.0)
    with gw.watch(model, stats="full", sample_every=1) as w:
        nn.functional.cross_entropy(model(x), y).backward()
        w.step()
    f = w.diagnose()["saturation"]
    assert f.layers == ["hidden1"]
    # independent: the fraction of hidden1's pre-activations where σ'(z) < 1 % of 1/4
    z = model.hidden1(x)
    s = torch.sigmoid(z)
    assert f.evidence["act_saturation"][0] == pytest.approx(float((s * (1 - s) < 0.0025).float().mean()), rel=1e-6)


def test_default_statistics_say_what_was_not_checked(digits):
    x, y = digits
    model = mlp([64, 16, 10], "relu")
    with gw.watch(model) as w:
        nn.functional.cross_entropy(model(x), y).backward()
        w.step()
    d = w.diagnose()
    assert any("saturation" in s for s in d.not_checked) and any("update_ratio" in s for s in d.not_checked)


def test_thresholds_are_named_parameters(digits):
    w = _train(digits, "relu", "he_normal", steps=2)
    assert w.diagnose().healthy
    d = w.diagnose(large_update_ratio=1e-9)  # a threshold that every layer's update now exceeds
    assert "large_updates" in d.kinds() and len(d["large_updates"].layers) == len(w.history.layers)
    assert Thresholds().vanishing_ratio == 1e-2


@pytest.mark.parametrize("kwargs, param", [({"vanishing_ratio": 0}, "vanishing_ratio"),
                                           ({"dead_fraction": 1.5}, "dead_fraction"),
                                           ({"vanish_ratio": 0.1}, "vanish_ratio")], ids=str)
def test_bad_threshold_raises_config_error(kwargs, param):
    with pytest.raises(ConfigError) as exc:
        Thresholds(**kwargs)
    assert exc.value.param == param


def test_every_remedy_names_its_source_and_findings_serialise(digits):
    assert all(r.source for r in CATALOGUE.values())
    d = _train(digits, "sigmoid", "normal", std=0.05, steps=2).diagnose()
    out = d.to_dict()
    lectures = ("Nielsen", "Polykovskiy", "Deep Learning A-Z", "Giselsson", "Bursuc")
    assert out["healthy"] is False and any(n in out["findings"][0]["remedies"][0]["source"] for n in lectures)


def test_recurrent_layers_get_the_rnn_remedies():
    """A history written by hand: an input projection and a plain RNN with 1e-7 of the head's relative gradient."""
    h = History(["proj", "rnn", "head"], ["grad_norm", "weight_norm", "nonfinite"], kinds=["Linear", "RNN", "Linear"],
                numel=[100, 100, 100])
    h.append(np.arange(3), np.array([[[1e-8, 1e-7, 0.1], [1.0, 1.0, 1.0], [0, 0, 0]]] * 3))
    f = diagnose(h)["vanishing"]
    # no graph was read: registration order stands for depth; the reference is the head (a quarter of 3 layers)
    assert f.layers == ["proj", "rnn"]
    assert f.evidence["ratio_to_output_side"] == pytest.approx([1e-8 / 0.1, 1e-7 / 0.1], rel=1e-5)
    assert [r.key for r in f.remedies][:2] == ["lstm", "recurrent_init"]
    assert all("Deep Learning A-Z" in r.source for r in f.remedies[:3])


def test_report_prints_table_and_diagnosis(digits):
    from rich.console import Console

    w = _train(digits, "sigmoid", "normal", std=0.05, steps=2)
    console = Console(record=True, width=200)
    w.report(console=console)
    text = console.export_text()
    assert "hidden1" in text and "VANISHING" in text and "Nielsen, ch. 5" in text


def test_report_puts_sampled_hook_statistics_in_a_second_table_that_fits_80_columns(digits):
    from rich.console import Console

    console = Console(record=True, width=80)
    _train(digits, "sigmoid", "normal", std=0.05, steps=2).report(console=console)  # sampled at step 0
    text = console.export_text()
    assert "activations and backward gains (last sampled step 0; global)" in text
    assert "…" not in text.split("activations and backward gains")[0]  # no truncated cell in the first table
    # a row in each table: step 1's gradient norms, step 0's sampled gradient/weight statistics, the hook table
    assert len([line for line in text.splitlines() if line.startswith("│ hidden1")]) == 3
    x, y = digits
    model = mlp([64, 16, 10], "relu")
    with gw.watch(model) as w:  # default statistics: no hook table
        nn.functional.cross_entropy(model(x), y).backward()
        w.step()
    default = Console(record=True, width=80)
    w.report(console=default)
    assert "activations and backward gains" not in default.export_text()

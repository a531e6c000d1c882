"""Which modules the watch recognises as activations, what counts as saturated, and the log10|g| histogram range."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.nn.activations import ACTIVATIONS
from gradwatch.probe.history import HIST_SPECIAL
from gradwatch.probe.layers import as_activation, find_layers
from gradwatch.probe.stats import HIST_EDGES, SATURATION_LEVEL, log10_histogram


@pytest.mark.parametrize("module, name", [
    (nn.GELU(), "gelu"), (nn.GELU(approximate="tanh"), "gelu_tanh"), (nn.SiLU(), "silu"), (nn.Mish(), "mish"),
    (nn.Hardtanh(), "hardtanh"), (nn.ReLU6(), "relu6"), (nn.Hardswish(), "hardswish"),
    (nn.Hardsigmoid(), "hardsigmoid"), (nn.ReLU(inplace=True), "relu")], ids=lambda v: str(v))
def test_torch_activation_modules_are_recognised(module, name):
    act, _ = as_activation(module)
    assert act.name == name
    x = torch.linspace(-7, 7, 999, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(module.double()(x.clone()).sum(), x)  # clone: some work in place
    torch.testing.assert_close(act.derivative(x.detach()), g, rtol=1e-7, atol=1e-10)


def test_hardtanh_with_other_bounds_is_not_claimed():
    assert as_activation(nn.Hardtanh(-2.0, 2.0)) is None


def _fake(cls_name, package):
    """A class named like a Hugging Face / timm activation, without importing either library."""
    return type(cls_name, (nn.Module,), {"__module__": package, "forward": lambda self, x: x})()


@pytest.mark.parametrize("cls_name, name", [("GELUActivation", "gelu"), ("NewGELUActivation", "gelu_tanh"),
                                            ("GELUTanh", "gelu_tanh"), ("FastGELUActivation", "gelu_tanh"),
                                            ("QuickGELUActivation", "quick_gelu"), ("SiLUActivation", "silu"),
                                            ("MishActivation", "mish")])
def test_hugging_face_activations_are_recognised_by_name(cls_name, name):
    assert as_activation(_fake(cls_name, "transformers.activations"))[0].name == name
    assert as_activation(_fake(cls_name, "my_project.layers")) is None  # only from those packages


@pytest.mark.parametrize("cls_name", ["GELUActivation", "NewGELUActivation", "GELUTanh", "FastGELUActivation",
                                      "QuickGELUActivation", "SiLUActivation", "MishActivation"])
def test_real_hugging_face_activations_match_the_registered_derivative(cls_name):
    acts = pytest.importorskip("transformers.activations", reason="needs transformers")
    module = getattr(acts, cls_name)()
    act, _ = as_activation(module)
    x = torch.linspace(-7, 7, 999, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(module(x).sum(), x)
    torch.testing.assert_close(act.derivative(x.detach()), g, rtol=1e-6, atol=1e-8)  # FastGELU rounds √(2/π)


@pytest.mark.parametrize("name, z, saturated", [
    ("relu", [-50.0, -1.0, 2.0], [False, False, False]),  # the zero half is inactive, not saturated
    ("gelu", [-50.0, -0.75, 3.0], [False, False, False]),
    ("silu", [-50.0, -1.28, 3.0], [False, False, False]),
    ("sigmoid", [-20.0, 0.0, 20.0], [True, False, True]),
    ("tanh", [-5.0, 0.0, 5.0], [True, False, True]),
    ("elu", [-10.0, -1.0, 10.0], [True, False, False]),
    ("relu6", [-3.0, 3.0, 8.0], [False, False, True]),
    ("hardtanh", [-2.0, 0.5, 2.0], [True, False, True]),
], ids=lambda v: str(v))
def test_what_counts_as_saturated(name, z, saturated):
    z = torch.tensor(z, dtype=torch.float64)
    assert ACTIVATIONS[name].saturated(z, SATURATION_LEVEL).tolist() == saturated


def test_relu_layer_reports_no_saturation_but_dead_units():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        net[0].bias[:3] = -100.0  # three units dead for every input
    x = torch.randn(16, 4)
    with gw.watch(net, stats=["act_saturation", "act_dead"], sample_every=1) as w:
        net(x).sum().backward()
        w.step()
    assert w.history.stat("act_saturation")[0, 0] == 0.0
    assert w.history.stat("act_dead")[0, 0] == pytest.approx(float((net[0](x) <= 0).all(0).float().mean()))
    assert w.history.stat("act_dead")[0, 0] >= 0.5


def test_dead_channels_of_a_convolution_are_its_output_channels_zero_over_batch_and_pixels():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 2))
    with torch.no_grad():
        net[0].bias[:3] = -100.0  # three channels off everywhere
        net[0].weight[5, 0, 0, 0] = float("nan")  # a NaN channel is not dead
    x = torch.randn(4, 3, 8, 8)
    with gw.watch(net, stats=["act_dead"], sample_every=1) as w:
        net(x).sum().backward()
        w.step()
    out = torch.relu(nn.functional.conv2d(x, net[0].weight, net[0].bias)).detach()
    truth = sum(bool((out[:, c] == 0).all()) for c in range(8)) / 8  # channel by channel, by hand
    assert truth == 3 / 8
    assert w.history.stat("act_dead")[0, 0] == pytest.approx(truth)


def test_watching_adds_no_global_warnings_filter():
    before = list(warnings.filters)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    with gw.watch(net, stats="full", sample_every=1) as w:
        for _ in range(3):
            net.zero_grad()
            net(torch.randn(5, 3)).sum().backward()
            w.step()
    assert warnings.filters == before


def test_histogram_reaches_float32_underflow_and_counts_what_is_outside():
    tiny = torch.finfo(torch.float32).tiny  # 1.18e-38, log10 −37.93
    g = torch.tensor([0.0, 0.0, 1e-40, tiny, 1e-30, 1e-20, 1e-12, 1.0, 3e4, float("inf"), float("nan")])
    counts = log10_histogram([g])
    bins, special = counts[:-len(HIST_SPECIAL)], dict(zip(HIST_SPECIAL, counts[-len(HIST_SPECIAL):].tolist()))
    assert special == {"zero": 2, "underflow": 1, "overflow": 2, "nan": 1}  # 1e-40 is subnormal: underflow
    edges = HIST_EDGES.double().numpy()
    assert edges[0] <= math.log10(tiny) < edges[1]  # the smallest normal float32 is in the first regular bin
    expected = np.histogram(np.log10([tiny, 1e-30, 1e-20, 1e-12, 1.0]), bins=edges)[0]
    np.testing.assert_array_equal(bins.numpy(), expected)
    assert counts.sum() == g.numel()


def test_vanishing_gradients_are_spread_over_their_decades_not_piled_in_the_lowest_bin():
    torch.manual_seed(0)
    g = 10.0 ** (-14 - 20 * torch.rand(10_000))  # |g| from 1e-34 to 1e-14: below the old 1e-12 floor
    counts = log10_histogram([g.float()])
    bins = counts[:len(HIST_EDGES) - 1]
    assert counts[len(HIST_EDGES) - 1:].sum() == 0  # nothing outside the regular bins
    assert bins.max() < 0.02 * g.numel()  # ≈ 10,000 / 80 bins each, no pile-up
    centres = (HIST_EDGES[:-1] + HIST_EDGES[1:]) / 2
    assert float((bins * centres).sum() / bins.sum()) == pytest.approx(-24.0, abs=0.3)  # mean log10|g|


def test_float64_gradients_below_1e_38_are_underflow_not_zero():
    counts = log10_histogram([torch.tensor([1e-300, 0.0, 1e-5], dtype=torch.float64)])
    special = dict(zip(HIST_SPECIAL, counts[-len(HIST_SPECIAL):].tolist()))
    assert special["underflow"] == 1 and special["zero"] == 1 and counts[:-len(HIST_SPECIAL)].sum() == 1


def test_layers_get_recurrent_saturation_source():
    net = nn.Sequential()
    net.add_module("lstm", nn.LSTM(3, 4))
    net.add_module("head", nn.Linear(4, 2))
    net.add_module("act", nn.SiLU())
    layers = find_layers(net)
    assert [l.saturation_source for l in layers] == ["gates", "silu"]


def test_large_layers_are_histogrammed_on_a_sample_with_unbiased_fractions():
    torch.manual_seed(0)
    big = torch.cat([10.0 ** (-30 * torch.rand(300_000)), torch.zeros(20_000)])  # 320k elements, 6.25 % zeros
    g = [big[:256 * 1000].reshape(1000, 256), big[256 * 1000:]]
    counts = log10_histogram(g)
    assert float(counts.sum()) == pytest.approx(big.numel(), rel=1e-6)  # scaled to the layer's size
    exact = log10_histogram(g, max_elements=None)
    np.testing.assert_allclose((counts / counts.sum()).numpy(), (exact / exact.sum()).numpy(), atol=0.01)
    zero = len(HIST_EDGES) - 1
    assert float(counts[zero] / counts.sum()) == pytest.approx(20_000 / 320_000, abs=0.005)
    torch.testing.assert_close(log10_histogram(g), counts)  # the same sample every step

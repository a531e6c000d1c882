"""Measurements batched over layers give what each layer measured on its own gives (computed here with NumPy or
from ``.grad`` directly): the histograms of all layers in one count, ``grad_dead``'s bias pre-check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradwatch.probe.histogram import HIST_EDGES, log10_histograms
from gradwatch.probe.history import HIST_SPECIAL
from gradwatch.probe.layers import find_layers
from gradwatch.probe.units import DeadRows


def _numpy_counts(values: np.ndarray) -> np.ndarray:
    """The regular bins of log10|g| (numpy.histogram) then zero, underflow, overflow, NaN — from NumPy alone; the
    logarithm in the values' own precision (float32 unless float64), as the watch documents."""
    edges = HIST_EDGES.double().numpy()
    a = np.abs(values if values.dtype == np.float64 else values.astype(np.float32))
    nan, zero = np.isnan(a), a == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(a).astype(np.float64)
    finite = ~nan & ~zero
    under = finite & (logs < edges[0])
    over = finite & (logs > edges[-1])
    regular = np.histogram(logs[finite & ~under & ~over], bins=edges)[0]
    return np.concatenate([regular, [zero.sum(), under.sum(), over.sum(), nan.sum()]]).astype(np.float64)


def test_histograms_of_several_layers_equal_numpy_on_each_layer():
    torch.manual_seed(0)
    spread = lambda *shape: torch.randn(*shape) * 10.0 ** (12 * torch.rand(*shape) - 10)  # noqa: E731
    odd = torch.tensor([0.0, 0.0, 1e-40, 1.0, 1e4, 3e4, float("inf"), float("-inf"), float("nan"), -3e-12])
    layers = [
        [spread(64, 100), spread(64)],
        [],  # a layer without gradients this step
        [odd],
        [spread(300, 200)],  # larger than the sample: exact here (max_elements=None)
    ]
    counts = log10_histograms(layers, max_elements=None).numpy()
    assert counts.shape == (4, len(HIST_EDGES) - 1 + len(HIST_SPECIAL))
    for row, grads in zip(counts, layers):
        values = np.concatenate([g.numpy().ravel() for g in grads]) if grads else np.zeros(0)
        np.testing.assert_array_equal(row, _numpy_counts(values))


def test_histograms_keep_float64_resolution_when_one_layer_is_float64():
    layers = [
        [torch.tensor([1e-300, 0.0, 1e-5], dtype=torch.float64)],
        [torch.tensor([2e-3, 2.0])],
    ]  # away from the bin edges (1 ulp of log10 apart there)
    counts = log10_histograms(layers, max_elements=None).numpy()
    for row, (g,) in zip(counts, layers):
        np.testing.assert_array_equal(row, _numpy_counts(g.numpy()))


def test_a_sampled_layer_is_binned_on_its_fixed_sample_scaled_to_its_size():
    """A layer of more than twice ``max_elements`` elements: the counts are NumPy's of the sampled elements (drawn
    from each tensor in proportion to its size, by the fixed positions), scaled to the layer's size."""
    from gradwatch.probe.histogram import _sample_index

    torch.manual_seed(2)
    w = torch.randn(40, 30) * 10.0 ** (8 * torch.rand(40, 30) - 6)
    w[::3] = 0.0  # rows of exact zeros, as a dead unit's
    b = torch.randn(30)
    small = torch.tensor([2e-3, 3.0])  # every element counted; away from the bin edges (1 ulp of log10 apart there)
    layers = [[w, b], [small]]
    counts = log10_histograms(layers, max_elements=64).numpy()
    total = w.numel() + b.numel()
    picked = [t.reshape(-1)[_sample_index(t.numel(), -(-64 * t.numel() // total), "cpu")] for t in (w, b)]
    values = torch.cat(picked).numpy()
    np.testing.assert_allclose(counts[0], _numpy_counts(values) * total / len(values), rtol=1e-6)
    np.testing.assert_array_equal(counts[1], _numpy_counts(small.numpy()))
    assert counts[0].sum() == pytest.approx(total)


def test_histograms_refuse_unequal_edges_and_accept_other_equal_ones():
    grads = [[torch.tensor([1e-3, 1e-1, 10.0])]]
    with pytest.raises(ValueError, match="equally spaced"):
        log10_histograms(grads, edges=torch.tensor([-4.0, -2.0, 0.0, 3.0]))
    counts = log10_histograms(grads, edges=torch.tensor([-4.0, -2.0, 0.0, 2.0]), max_elements=None)
    assert counts[0, :3].tolist() == [1.0, 1.0, 1.0]  # 1e-3 in [-4, -2), 1e-1 in [-2, 0), 10 in [0, 2]


def _dead_truth(layer: nn.Linear) -> float:
    g, b = layer.weight.grad, layer.bias.grad if layer.bias is not None else None
    rows = g.abs().amax(1) + (b.abs() if b is not None else 0)
    return float((rows == 0).float().mean())


@pytest.mark.parametrize("device_reads", [True, False], ids=["cpu-precheck", "no-host-read"])
def test_grad_dead_with_and_without_the_bias_precheck_equals_the_gradient_rows(device_reads, monkeypatch):
    from gradwatch.probe import reads

    if not device_reads:  # as on an accelerator: nothing read on the host, every layer's rows reduced
        monkeypatch.setattr(reads, "FREE_READ_DEVICES", set())
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4, bias=False))
    with torch.no_grad():
        net[0].bias[0] = -100.0  # 1 of 16 units of the first layer off for every input: its row alone is read
        net[2].bias[:6] = -100.0  # 6 of 16 units of the second layer off for every input: every row is read
    net(torch.randn(32, 8)).square().mean().backward()
    with torch.no_grad():
        net[0].bias.grad[3] = 0.0  # a zero bias entry on a live unit: its row is read, and it is not dead
    layers = find_layers(net)
    params = [p for l in layers for p in l.params]
    out = DeadRows(layers, params).measure(list(range(len(params))), torch.device("cpu"))
    truth = [_dead_truth(net[i]) for i in (0, 2, 4)]
    assert truth[0] == pytest.approx(1 / 16) and truth[1] == pytest.approx(6 / 16)
    np.testing.assert_allclose(out.numpy(), truth)


@pytest.mark.parametrize("device_reads", [True, False], ids=["cpu-precheck", "no-host-read"])
def test_grad_dead_of_conv_and_transposed_conv_units_equals_their_gradient_slices(device_reads, monkeypatch):
    """Units are output channels: dim 0 of a Conv2d weight, dim 1 of a ConvTranspose2d weight; all layers whose
    rows are read are tested together. The truth is read per unit from the gradient's slices (a max of |g|)."""
    from gradwatch.probe import reads

    if not device_reads:
        monkeypatch.setattr(reads, "FREE_READ_DEVICES", set())
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ConvTranspose2d(8, 6, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 8 * 8, 4, bias=False),
    )
    with torch.no_grad():
        net[0].bias[:3] = -100.0  # 3 of 8 conv channels off everywhere
        net[2].bias[4:] = -100.0  # 2 of 6 transposed-conv channels off everywhere
    net(torch.randn(5, 3, 8, 8)).square().mean().backward()
    layers = find_layers(net)
    params = [p for l in layers for p in l.params]
    out = DeadRows(layers, params).measure(list(range(len(params))), torch.device("cpu")).numpy()

    def truth(weight_grad, bias_grad, dim):
        per_unit = weight_grad.movedim(dim, 0).flatten(1).abs().amax(1)
        if bias_grad is not None:
            per_unit = per_unit + bias_grad.abs()
        return float((per_unit == 0).double().mean())

    expected = [truth(net[0].weight.grad, net[0].bias.grad, 0), truth(net[2].weight.grad, net[2].bias.grad, 1),
                truth(net[5].weight.grad, None, 0)]
    assert expected[0] == pytest.approx(3 / 8) and expected[1] == pytest.approx(2 / 6)
    np.testing.assert_allclose(out, expected)


@pytest.mark.parametrize(
    "options", [{"on_nonfinite": "locate"}, {"stats": "full", "sample_every": 1}, {}], ids=["locate", "full", "default"]
)
@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_a_double_backward_graph_is_freed_after_the_step_while_the_watch_stays_open(options):
    """``backward(create_graph=True)`` gives gradients with a graph (gradient penalties, MAML): whatever the watch
    keeps of them — norms, the finite checks — holds no graph once the step is over. The witness: an
    activation that graph saves, referenced weakly, dies once the loop drops its own references."""
    import gc
    import weakref

    import gradwatch as gw

    torch.manual_seed(0)
    big = nn.Sequential(nn.Linear(8, 5000), nn.Tanh(), nn.Linear(5000, 3))
    opt = torch.optim.SGD(big.parameters(), lr=0.01)
    saved = []
    big[1].register_forward_hook(lambda module, inputs, output: saved.append(weakref.ref(output)))
    with gw.watch(big, opt, **options):
        loss = big(torch.randn(4, 8)).square().mean()
        loss.backward(create_graph=True)
        assert big[0].weight.grad.requires_grad and saved[0]() is not None
        opt.step()
        opt.zero_grad(set_to_none=True)
        del loss
        gc.collect()
        assert saved[0]() is None


@pytest.mark.parametrize("device_reads", [True, False], ids=["cpu", "no-host-read"])
def test_weight_nonfinite_counts_equal_the_weights_elements(device_reads, monkeypatch):
    """``weight_nonfinite`` per layer equals the inf/NaN elements of its weights counted here with isfinite; a layer
    of huge finite weights (its float32 norm overflows to inf) counts 0, with and without host reads."""
    import gradwatch as gw
    from gradwatch.probe import reads

    if not device_reads:
        monkeypatch.setattr(reads, "FREE_READ_DEVICES", set())
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with torch.no_grad():
        net[0].weight[0, :3] = float("nan")
        net[0].bias[1] = float("inf")
        net[2].weight.fill_(1e30)  # finite, but Σw² overflows float32
    truth = [sum(int((~torch.isfinite(p)).sum()) for p in net[i].parameters()) for i in (0, 2, 4)]
    assert truth == [4, 0, 0]
    with gw.watch(net, opt) as w:  # one step: its NaN gradients make every weight NaN after it
        net(torch.randn(3, 4)).sum().backward()
        opt.step()
    np.testing.assert_array_equal(w.history.stat("weight_nonfinite"), [truth])

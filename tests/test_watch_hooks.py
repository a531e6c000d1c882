"""The sampled (module-hook) statistics against the same numbers computed by hand from a manual forward pass."""

import gc

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.probe import History, NonFiniteGradientError
from gradwatch.probe.stats import HIST_EDGES, SATURATION_LEVEL


def _net(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 9), nn.Sigmoid(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 3)).double()
    with torch.no_grad():
        net[0].weight.mul_(4.0)  # push some sigmoid inputs into saturation
        net[2].bias.sub_(0.3)  # and some ReLU units toward zero
    return net


def _data(seed=0, n=24):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def _manual(net, x, y):
    """Forward pass written out with every intermediate kept; gradients by torch.autograd.grad."""
    x = x.clone().requires_grad_()
    z1 = net[0](x)
    a1 = torch.sigmoid(z1)
    z2 = net[2](a1)
    a2 = torch.relu(z2)
    z3 = net[4](a2)
    loss = nn.functional.cross_entropy(z3, y)
    gx, gz1, ga1, gz2, ga2, gz3 = torch.autograd.grad(loss, [x, z1, a1, z2, a2, z3])
    n = torch.linalg.vector_norm
    s1 = a1 * (1 - a1)
    return {
        "act_mean": [a1.mean(), a2.mean(), z3.mean()],
        "act_std": [a1.std(correction=0), a2.std(correction=0), z3.std(correction=0)],
        # ReLU's zero half (z2 <= 0) is inactive, not saturated: 0 there (act_dead covers it)
        "act_saturation": [(s1 < SATURATION_LEVEL * 0.25).double().mean(), 0.0, np.nan],
        "act_dead": [(a1 == 0).all(0).double().mean(), (a2 == 0).all(0).double().mean(),
                     (z3 == 0).all(0).double().mean()],
        "backward_gain": [np.nan, n(ga1) / n(gz2), n(ga2) / n(gz3)],  # first layer: its input needs no grad
        "gain_activation": [n(gz1) / n(ga1), n(gz2) / n(ga2), np.nan],
        "block": [n(ga1) / n(gz3)],  # ∂L/∂a1 over ∂L/∂z3: layers 2 and 3 with the ReLU between
    }


def _floats(values):
    return [float(v.detach()) if torch.is_tensor(v) else float(v) for v in values]


def test_every_sampled_statistic_equals_the_manual_forward_and_autograd():
    net = _net()
    x, y = _data()
    expected = _manual(net, x, y)
    with gw.watch(net, stats="full", sample_every=1) as w:
        nn.functional.cross_entropy(net(x), y).backward()
        w.step()
    h = w.history
    for name in ("act_mean", "act_std", "act_saturation", "act_dead", "backward_gain", "gain_activation"):
        np.testing.assert_allclose(h.stat(name)[0], _floats(expected[name]), rtol=1e-6, equal_nan=True, err_msg=name)
    assert 0 < h.stat("act_saturation")[0, 0] < 1 and 0 < h.stat("act_dead")[0, 1] < 1  # the checks can fail
    # the decomposition telescopes: (weights part of layer 3) × (σ' part of layer 2) × (weights part of layer 2)
    bg, ga = h.stat("backward_gain")[0], h.stat("gain_activation")[0]
    assert bg[2] * ga[1] * bg[1] == pytest.approx(float(expected["block"][0]), rel=1e-6)


def test_sigmoid_activation_part_is_a_quarter_at_zero_input():
    """With tiny weights every sigmoid input is ≈ 0, where σ' = 1/4 (seed 000: max σ' = 1/4)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 2)).double()
    for m in net[::2]:
        nn.init.normal_(m.weight, std=1e-4)
        nn.init.zeros_(m.bias)
    x, y = _data()
    with gw.watch(net, stats=["gain_activation"], sample_every=1) as w:
        nn.functional.cross_entropy(net(x), y[:24] % 2).backward()
        w.step()
    np.testing.assert_allclose(w.history.stat("gain_activation")[0, :2], [0.25, 0.25], rtol=1e-6)


def test_histograms_equal_numpy_histogram_of_log10_abs_grad():
    net = _net()
    x, y = _data()
    with gw.watch(net, stats=["grad_hist"], sample_every=1) as w:
        nn.functional.cross_entropy(net(x), y).backward()
        w.step()
    edges = HIST_EDGES.double().numpy()
    got, outside = w.history.histograms()[0], w.history.hist_outside()[0]
    for i, m in enumerate(net[::2]):
        g = np.concatenate([p.grad.numpy().ravel() for p in m.parameters()])
        zero = g == 0
        logs = np.log10(np.abs(g[~zero]))
        np.testing.assert_array_equal(got[i], np.histogram(logs, bins=edges)[0])
        assert outside[i].tolist() == [zero.sum(), (logs < edges[0]).sum(), (logs > edges[-1]).sum(), 0]
    assert (got.sum(axis=1) + outside.sum(axis=1)).tolist() == [sum(p.numel() for p in m.parameters())
                                                               for m in net[::2]]


def test_hooks_are_attached_only_on_sampled_steps_and_skip_evaluation():
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    attached = []
    with gw.watch(net, opt, stats="full", sample_every=3) as w:
        for step in range(7):
            attached.append(bool(net[0]._forward_hooks))
            x, y = _data(step)
            with torch.no_grad():
                net(x * 100)  # an evaluation pass between steps must not count
            expected = _manual(net, x, y)["act_mean"]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            if step % 3 == 0:
                sampled_mean = _floats(expected)
            opt.step()
    assert attached == [True, False, False, True, False, False, True]
    h = w.history
    assert h.sampled_steps("act_mean").tolist() == [0, 3, 6] and h.sampled_steps("grad_norm").tolist() == list(range(7))
    np.testing.assert_allclose(h.stat("act_mean", sampled_only=True)[-1], sampled_mean, rtol=1e-6)


class EmitsInf(nn.Module):
    """Passes its input through, except on forward call number ``at`` (0-based) where it emits inf."""

    def __init__(self, width, at):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width, dtype=torch.float64))
        self.at, self.calls = at, 0

    def forward(self, x):
        out = x * self.scale
        if self.calls == self.at:
            out = out + torch.tensor(float("inf"), dtype=x.dtype)
        self.calls += 1
        return out


def _inf_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.ReLU(), EmitsInf(6, at=5), nn.Linear(6, 6), nn.ReLU(),
                         nn.Linear(6, 3)).double()


@pytest.mark.parametrize("stats", ["default", "full"])
def test_a_module_that_emits_inf_at_step_5_is_found_at_step_5(stats):
    net = _inf_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with gw.watch(net, opt, stats=stats, sample_every=1) as w:
        for step in range(8):
            x, y = _data(step)
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    finding = w.diagnose()["nonfinite"]
    assert finding.step == 5
    if stats == "full":  # the forward hooks see which layer's output went non-finite first
        assert finding.layers[0] == "2" and "output was non-finite" in finding.summary
    else:  # from gradients alone the inf is everywhere; the finding says how to locate it
        assert "on_nonfinite='locate'" in str(finding)
    counts = w.history.stat("nonfinite")
    assert (counts[:5] == 0).all() and (counts[5] > 0).all()


def test_on_nonfinite_raise_stops_before_the_optimizer_step():
    net = _inf_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with gw.watch(net, opt, stats="full", sample_every=1, on_nonfinite="raise") as w:
        with pytest.raises(NonFiniteGradientError, match="step 5") as exc:
            for step in range(8):
                x, y = _data(step)
                opt.zero_grad()
                nn.functional.cross_entropy(net(x), y).backward()
                before = net[0].weight.detach().clone()
                opt.step()
    assert exc.value.step == 5 and exc.value.layer == "2"
    assert torch.equal(net[0].weight, before)  # the NaN update was not applied
    assert not net[2]._forward_hooks


def test_memory_stays_flat_over_thousands_of_steps():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))

    def live_tensors():
        gc.collect()
        return sum(1 for o in gc.get_objects() if torch.is_tensor(o))

    with gw.watch(net, opt, stats="full", sample_every=10, flush_every=50) as w:
        for step in range(3000):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            if step == 499:
                early = live_tensors()
        late = live_tensors()
    assert late <= early  # nothing piles up: no stored graph, no stale hook values, pending queue flushed
    assert len(w.history) == 3000 and w.history.stat("grad_norm").dtype == np.float64


def test_history_plots_read_saved_numbers(tmp_path):
    from gradwatch.report.watch_plots import GradientHistograms, LayerStatOverTime

    net = _net()
    x, y = _data()
    with gw.watch(net, stats=["grad_norm", "grad_hist"], sample_every=1) as w:
        for _ in range(2):
            net.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            w.step()
    back = History.from_dict(w.history.to_dict())  # plots work from a saved history, not live tensors
    p = GradientHistograms(back).plot()
    assert p.ax.get_xlabel().startswith("log10") and len(p.ax.lines) == 3
    assert LayerStatOverTime(back).save(tmp_path / "g.png").stat().st_size > 0


def test_on_nonfinite_warn_keeps_going_and_warns_once():
    net = _inf_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with pytest.warns(RuntimeWarning, match="non-finite gradient at step 5") as record:
        with gw.watch(net, opt, on_nonfinite="warn") as w:
            for step in range(8):
                x, y = _data(step)
                opt.zero_grad()
                nn.functional.cross_entropy(net(x), y).backward()
                opt.step()
    assert sum("non-finite gradient" in str(r.message) for r in record) == 1
    assert w.history.steps.tolist() == list(range(8))

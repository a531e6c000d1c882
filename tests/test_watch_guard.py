"""A statistic that raises inside a hook is reported once, switched off on that layer, and training goes on."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.probe import stats
from gradwatch.probe.guard import Guard, HookFailureWarning


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))


def _train(net, steps=4, **kwargs):
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with gw.watch(net, opt, sample_every=1, **kwargs) as w:
        for step in range(steps):
            x, y = torch.randn(6, 4), torch.randint(0, 2, (6,))
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    return w


def test_forward_statistic_failing_on_one_layer_is_reported_once_and_disabled_there(monkeypatch):
    original = stats.ActStd.compute
    calls = []

    def flaky(self, a, z, layer):
        calls.append(layer.name)
        if layer.name == "2":
            raise ValueError("injected failure")
        return original(self, a, z, layer)

    monkeypatch.setattr(stats.ActStd, "compute", flaky)
    net = _net()
    with pytest.warns(HookFailureWarning) as record:
        w = _train(net, stats="full")
    messages = [str(r.message) for r in record if issubclass(r.category, HookFailureWarning)]
    assert len(messages) == 1
    assert "'act_std'" in messages[0] and "'2'" in messages[0] and "ValueError: injected failure" in messages[0]
    assert calls.count("2") == 1  # switched off after the first failure
    s = w.history.stat("act_std")
    assert np.isnan(s[:, 1]).all() and np.isfinite(s[:, [0, 2]]).all()  # the other layers keep their values
    assert np.isfinite(w.history.stat("act_mean")).all()  # and the other statistics too
    assert w.history.steps.tolist() == [0, 1, 2, 3]  # training went on
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_backward_gain_failing_in_a_tensor_hook_does_not_stop_backward(monkeypatch):
    def boom(grad):
        raise RuntimeError("norm exploded")

    monkeypatch.setattr(stats.BackwardStat, "norm", staticmethod(boom))
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.warns(HookFailureWarning) as record:
        w = _train(net, stats=["backward_gain", "gain_activation", "act_mean"])
    messages = sorted(str(r.message) for r in record)
    assert len(messages) == 2 and all("norm exploded" in m for m in messages)  # one per statistic
    assert "'backward_gain'" in messages[0] and "'gain_activation'" in messages[1]
    assert np.isnan(w.history.stat("backward_gain")).all()
    assert np.isfinite(w.history.stat("act_mean")).all()
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters()))  # the optimizer stepped


def test_guard_api():
    guard = Guard()
    with pytest.warns(HookFailureWarning, match="'s' failed on layer 'a'"):
        assert guard.run("s", "a", lambda: 1 / 0) is None
    assert guard.run("s", "b", lambda: 2) == 2 and not guard.active("s", "a") and guard.active("s", "b")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second failure of the same statistic is not warned again
        assert guard.run("s", "b", lambda: [][0]) is None
    with pytest.warns(HookFailureWarning, match=r"'t' failed \(all layers\)"):
        guard.fail("t", None, KeyError("x"))  # layer None switches the statistic off everywhere
    assert not guard.active("t", "anything") and guard.run("t", "c", lambda: 3) is None
    assert set(guard.summary()) == {"s @ a", "s @ b", "t @ *"}
    with pytest.raises(KeyboardInterrupt):
        guard.run("u", None, _interrupt)


def _interrupt():
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["snapshot", "reached"])
def test_a_failure_in_the_backward_wrapper_never_reaches_the_loop(where, monkeypatch):
    """The wrapper of ``torch.autograd.backward`` runs the watch's code around every backward call: when that code
    raises, the backward still runs, the failure is reported once, and the gradient statistics stop (NaN) while
    training goes on."""
    from gradwatch.probe import preclip

    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(preclip.PreClip, where, broken)
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.warns(HookFailureWarning, match="injected") as caught:
        w = _train(net)
    assert sum("injected" in str(c.message) for c in caught) == 1
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters()))  # the optimizer stepped
    assert any("injected" in why for why in w.history.meta["disabled"].values())

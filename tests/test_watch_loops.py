"""The watch in the loops practitioners write: several optimizers, parameters without a gradient on some steps,
tied weights, layers unfrozen later, clipping, GradScaler's skipped steps, a failure inside the watch, and
on_nonfinite="raise". Every expected number is computed by hand from .grad / the parameters."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.probe import NonFiniteGradientError, patches
from gradwatch.probe.stats import STATS


def _batch(seed=0, n=16, d=6, classes=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def _norm(module):
    return torch.cat([p.grad.reshape(-1) for p in module.parameters()]).norm().item()


def test_two_optimizers_measure_their_own_layers_and_one_row_per_iteration():
    torch.manual_seed(0)
    gen, disc = nn.Linear(3, 6).double(), nn.Linear(6, 1).double()
    model = nn.ModuleDict({"gen": gen, "disc": disc})
    opt_g, opt_d = torch.optim.Adam(gen.parameters(), 1e-2), torch.optim.SGD(disc.parameters(), 0.1)
    expected = []
    with gw.watch(model, [opt_g, opt_d], sample_every=1) as w:
        for step in range(3):
            z = torch.randn(8, 3, dtype=torch.float64)
            opt_d.zero_grad()
            disc(gen(z).detach()).mean().backward()
            d_norm = _norm(disc)
            opt_d.step()
            opt_g.zero_grad()
            (-disc(gen(z)).mean()).backward()
            expected.append([_norm(gen), d_norm])
            opt_g.step()
    h = w.history
    assert h.layers == ["gen", "disc"] and h.steps.tolist() == [0, 1, 2]
    np.testing.assert_allclose(h.stat("grad_norm"), expected, rtol=1e-6)
    assert (h.stat("update_ratio") > 0).all()  # both nets moved: neither is "stalled"
    assert "stalled_updates" not in w.diagnose().kinds()


def test_a_parameter_without_gradient_is_unmeasured_not_zero():
    torch.manual_seed(0)
    model = nn.ModuleDict({"trunk": nn.Linear(6, 6), "a": nn.Linear(6, 4), "b": nn.Linear(6, 4)}).double()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    with gw.watch(model, opt, sample_every=1) as w:
        for step in range(4):
            x, y = _batch(step)
            head = model["a"] if step % 2 == 0 else model["b"]  # an expert / a head used on some steps
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(head(model["trunk"](x)), y).backward()
            opt.step()
    h = w.history
    for name in ("grad_norm", "update_ratio", "grad_abs_mean"):
        v = h.stat(name)
        assert np.isnan(v[1::2, 1]).all() and np.isnan(v[0::2, 2]).all(), name
        assert np.isfinite(v[0::2, 1]).all() and np.isfinite(v[1::2, 2]).all() and np.isfinite(v[:, 0]).all(), name


class _TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(5, 8))  # owned by the root module itself
        self.wte = nn.Embedding(11, 8)
        self.mix = nn.Linear(8, 8)
        self.lm_head = nn.Linear(8, 11, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids):
        return self.lm_head(torch.tanh(self.mix(self.wte(ids) + self.pos)))


def test_tied_weights_are_one_layer_and_root_parameters_are_named_after_themselves():
    torch.manual_seed(0)
    model = _TiedLM().double()
    ids = torch.randint(0, 11, (4, 5))
    with gw.watch(model) as w:
        nn.functional.cross_entropy(model(ids).reshape(-1, 11), ids.reshape(-1)).backward()
        w.step()
    h = w.history
    assert h.layers == ["pos", "wte", "mix"]
    assert h.meta["aliases"] == {"wte": ["lm_head"]}
    assert h.kinds[0] == "Parameter"
    # the tied matrix's gradient is the sum of both uses, counted once
    np.testing.assert_allclose(h.stat("grad_norm")[0, 1], model.wte.weight.grad.norm().item(), rtol=1e-6)


def test_a_layer_unfrozen_later_is_watched_from_then_on():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4)).double()
    model[0].requires_grad_(False)
    opt = torch.optim.SGD(model[2].parameters(), 0.1)
    with gw.watch(model, opt, sample_every=1) as w:
        for step in range(4):
            if step == 2:
                model[0].requires_grad_(True)
                opt.add_param_group({"params": model[0].parameters()})
            x, y = _batch(step)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    g, u = w.history.stat("grad_norm"), w.history.stat("update_ratio")
    assert np.isnan(g[:2, 0]).all() and np.isfinite(g[2:, 0]).all() and np.isfinite(g[:, 1]).all()
    assert np.isnan(u[:2, 0]).all() and (u[2:, 0] > 0).all()


def test_clipping_records_the_norm_before_and_after():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4)).double()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    pre, post = [], []
    with gw.watch(model, opt) as w:
        for step in range(3):
            x, y = _batch(step)
            opt.zero_grad()
            (10 * nn.functional.cross_entropy(model(x), y)).backward()
            pre.append([_norm(model[0]), _norm(model[2])])
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
            post.append([_norm(model[0]), _norm(model[2])])
            opt.step()
    h = w.history
    np.testing.assert_allclose(h.stat("grad_norm_preclip"), pre, rtol=1e-6)
    np.testing.assert_allclose(h.stat("grad_norm"), post, rtol=1e-6)
    assert np.linalg.norm(post, axis=1) == pytest.approx(0.05, rel=1e-4)
    assert torch.nn.utils.clip_grad_norm_ is torch.nn.utils.clip_grad.clip_grad_norm_
    assert not hasattr(torch.nn.utils.clip_grad_norm_, "__gradwatch_original__")  # restored after close


def test_steps_skipped_by_gradscaler_are_recorded():
    scaler_cls = patches._scaler_class()
    if scaler_cls is None:
        pytest.skip("this torch has no torch.amp.GradScaler")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4))
    opt = torch.optim.SGD(model.parameters(), 0.1)
    scaler = scaler_cls("cpu")
    before = [p.detach().clone() for p in model.parameters()]
    with gw.watch(model, opt) as w:
        for step in range(3):
            x, y = _batch(step)
            x[0, 0] = float("inf")  # every step's gradient is non-finite: the scaler skips them all
            opt.zero_grad()
            scaler.scale(nn.functional.cross_entropy(model(x.float()), y)).backward()
            scaler.step(opt)
            scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the optimizer never stepped
    h = w.history
    assert h.steps.tolist() == [0, 1, 2] and h.meta["skipped_steps"] == [0, 1, 2]
    assert (h.stat("nonfinite").sum(axis=1) > 0).all()


def test_a_failing_statistic_is_reported_once_and_training_goes_on(monkeypatch):
    calls = []

    def broken(raw):
        calls.append(1)
        raise RuntimeError("injected")

    monkeypatch.setattr(STATS["grad_norm"], "finish", broken)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4)).double()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with gw.watch(model, opt, flush_every=1) as w:
            for step in range(4):
                x, y = _batch(step)
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
    mine = [c for c in caught if "gradwatch" in str(c.message)]
    assert len(mine) == 1 and "injected" in str(mine[0].message) and "gradient statistics" in str(mine[0].message)
    assert "gradient statistics @ *" in w.history.meta["disabled"]
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks


def test_raise_keeps_the_raising_step_in_the_history():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4)).double()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with pytest.raises(NonFiniteGradientError) as err:
        with gw.watch(model, opt, on_nonfinite="raise") as w:
            for step in range(3):
                x, y = _batch(step)
                if step == 1:
                    x[0, 0] = float("inf")
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
    assert err.value.step == 1
    h = w.history
    assert h.steps.tolist() == [0, 1] and h.stat("nonfinite")[1].sum() > 0
    assert "nonfinite" in w.diagnose().kinds()


def test_no_host_read_per_step_where_reads_would_sync(monkeypatch):
    """On an accelerator a host read (.item(), .tolist(), .cpu(), bool(tensor)) waits for the device. With the
    CPU treated like one, the default watch reads nothing on the host between flushes."""
    from gradwatch.probe import reads

    monkeypatch.setattr(reads, "FREE_READ_DEVICES", set())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4))
    opt = torch.optim.SGD(model.parameters(), 1e-2, momentum=0.9)  # (Adam itself reads its step count on the CPU)
    reads = []
    real = {name: getattr(torch.Tensor, name) for name in ("item", "tolist", "cpu", "__bool__", "numpy")}

    def counting(name):
        def read(self, *args, **kwargs):
            reads.append(name)
            return real[name](self, *args, **kwargs)
        return read

    with gw.watch(model, opt, flush_every=1000) as w:
        for step in range(12):
            x, y = _batch(step)
            x = x.float()
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            with monkeypatch.context() as m:  # only the optimizer step, where the watch measures
                for name in real:
                    m.setattr(torch.Tensor, name, counting(name))
                opt.step()
    assert reads == []
    assert w.history.steps.tolist() == list(range(12))  # and everything was recorded (read at the flush)


def test_history_of_a_long_run_stays_bounded():
    """60,000 steps of a tiny model: the history keeps a bounded number of rows (default max_rows), the first
    and last steps exact, and a single spike survives as its window's maximum."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    spike_at = 31_337
    with gw.watch(model, stats=["grad_norm"], flush_every=1000) as w:
        for step in range(60_000):
            if step in (spike_at, spike_at + 1):
                for p in model.parameters():
                    p.grad.mul_(1e6 if step == spike_at else 1e-6)
            w.step()
    h = w.history
    assert h.n_recorded == 60_000 and len(h) <= h.max_rows
    steps = h.steps
    assert steps[0] == 0 and steps[-1] == 59_999
    by_hand = np.sqrt(12 + 4)  # ‖1‖ over the 16 parameter elements of the first layer
    assert h.stat("grad_norm", reduce="max")[:, 0].max() == pytest.approx(by_hand * 1e6, rel=1e-5)

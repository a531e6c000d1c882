"""The mechanisms behind a diagnosis that generalises to models it was not tuned on, each on a small model whose
truth the test computes itself (autograd's p.grad, copies of the weights, the forward order by construction)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gradwatch as gw
from gradwatch.diagnose import diagnose
from gradwatch.probe import History

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from zoo.scenarios import wild_models as wm  # noqa: E402


def _digits(n: int = 128):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def _loop(model, opt, steps, loss_fn=F.cross_entropy, scale=1.0, before_step=None, **watch):
    x, y = _digits()
    with gw.watch(model, optimizer=opt, **watch) as w:
        for _ in range(steps):
            opt.zero_grad()
            (scale * loss_fn(model(x), y)).backward()
            if before_step is not None:
                before_step()
            opt.step()
    return w


# ---- exploding is scale-free under adaptive optimizers -----------------------------------------------------------

def test_a_loss_scale_under_adam_is_not_an_explosion_but_under_sgd_it_is():
    rel0 = []

    def relative():  # ‖g‖/‖θ‖ of the whole model from autograd's p.grad, before the first step
        if not rel0:
            g = torch.sqrt(sum(p.grad.square().sum() for p in scaled.parameters()))
            t = torch.sqrt(sum(p.detach().square().sum() for p in scaled.parameters()))
            rel0.append(float(g / t))

    scaled, plain = _mlp(), _mlp()
    w = _loop(scaled, torch.optim.Adam(scaled.parameters(), lr=1e-3), 5, scale=1e4, before_step=relative)
    _loop(plain, torch.optim.Adam(plain.parameters(), lr=1e-3), 5)
    assert rel0[0] > 100  # an absolute ‖g‖/‖θ‖ rule would call it exploding
    for a, b in zip(scaled.parameters(), plain.parameters()):  # Adam divided the scale out: the same steps
        torch.testing.assert_close(a, b, rtol=1e-3, atol=5e-5)  # up to Adam's ε (5 % of one step of 1e-3)
    assert "exploding" not in w.diagnose()
    sgd = _mlp()
    w = _loop(sgd, torch.optim.SGD(sgd.parameters(), lr=1e-9), 3, scale=1e4)
    assert "exploding" in w.diagnose()  # under SGD the step grows with the gradient


def test_with_two_optimizers_only_the_sgd_layers_are_judged_by_their_gradient_scale():
    model = _mlp()
    body = [p for n, p in model.named_parameters() if not n.startswith("4.")]
    sgd, adam = torch.optim.SGD(body, lr=1e-9), torch.optim.Adam(model[4].parameters(), lr=1e-3)
    x, y = _digits()
    rel = {}
    with gw.watch(model, optimizer=[sgd, adam]) as w:
        for _ in range(3):
            sgd.zero_grad()
            adam.zero_grad()
            (1e4 * F.cross_entropy(model(x), y)).backward()
            rel = {n: float(model[i].weight.grad.norm() / model[i].weight.detach().norm())
                   for n, i in (("0", 0), ("4", 4))}
            sgd.step()
            adam.step()
    assert rel["4"] > 100 and rel["0"] > 100  # both far above the weights; only the SGD layer's step follows
    f = w.diagnose()["exploding"]
    assert "0" in f.layers and "4" not in f.layers


# ---- vectors judged apart from matrices --------------------------------------------------------------------------

def test_a_layerscale_gain_at_1e5_is_no_large_update():
    torch.manual_seed(0)
    model = wm.LayerScaleNet(1e-5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gamma = model.blocks[0].gamma
    before = gamma.detach().clone()
    x, y = _digits()
    with gw.watch(model, optimizer=opt) as w:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        step0 = float((gamma.detach() - before).norm() / before.norm())
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert step0 > 10  # by its own norm the gain moved ~100× on step 0: a matrix rule would flag it
    assert w.history.meta["vectors"][w.history.layers.index("blocks.0")]
    assert not w.history.meta["vectors"][w.history.layers.index("blocks.0.fc1")]
    d = w.diagnose()
    assert "large_updates" not in d, str(d)


def test_a_gain_moved_by_lr_5_is_a_large_update():
    torch.manual_seed(0)
    model = wm.LayerScaleNet(1e-5)
    opt = torch.optim.Adam(model.parameters(), lr=5.0)
    gamma = model.blocks[0].gamma
    before = gamma.detach().clone()
    x, y = _digits()
    with gw.watch(model, optimizer=opt) as w:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    floor = max(float(before.norm()), gamma.numel() ** 0.5 * 1e-2)
    assert float((gamma.detach() - before).norm()) / floor > 1  # the truth, on the vector's own terms
    assert "blocks.0" in w.diagnose()["large_updates"].layers


# ---- several optimizers, several losses: depth from the graph that ran -------------------------------------------

def _gan():
    torch.manual_seed(0)
    return wm.GAN(wm.chain([16, 32, 32, 32, 2], "relu"), wm.chain([2, 32, 32, 1], "leaky"))


def test_a_gan_watched_as_one_container_gets_depth_from_each_loss():
    gan = _gan()
    opt_d = torch.optim.Adam(gan.D.parameters(), lr=1e-3)
    opt_g = torch.optim.Adam(gan.G.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    ratios = []  # G.0's ‖g‖/‖θ‖ over G.6's at each generator step, from autograd

    def relative(*_):
        rel = [torch.sqrt(sum(p.grad.square().sum() for p in m.parameters()) / sum(p.detach().square().sum()
                                                                                 for p in m.parameters()))
               for m in (gan.G[0], gan.G[6])]
        ratios.append(float(rel[0] / rel[1]))

    opt_g.register_step_pre_hook(relative)
    with gw.watch(gan, optimizer=[opt_d, opt_g]) as w:
        for _ in range(20):
            real, z = torch.randn(32, 2, generator=g) + 2, torch.randn(32, 16, generator=g)
            opt_d.zero_grad()
            d = gan.D(torch.cat([real, gan.G(z).detach()]))
            F.binary_cross_entropy_with_logits(d, torch.cat([torch.ones(32, 1), torch.zeros(32, 1)])).backward()
            opt_d.step()
            opt_g.zero_grad()
            out = gan.D(gan.G(z))
            F.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
            opt_g.step()
    meta = w.history.meta
    names = w.history.layers
    assert meta["depth_from"] == "loss"  # the container's forward never ran; the losses' graphs did
    col = {n: i for i, n in enumerate(names)}
    # by construction: D's loss ran first (loss 0) and never reached G (fakes detached); G from its own loss (1)
    assert [meta["loss_of"][col[n]] for n in ("D.0", "D.2", "D.4")] == [0, 0, 0]
    assert [meta["loss_of"][col[n]] for n in ("G.0", "G.2", "G.4", "G.6")] == [1, 1, 1, 1]
    assert [meta["optimizer_of"][col[n]] for n in ("D.0", "G.0")] == [0, 1]
    depth = meta["depth"]  # the forward order within each network, farthest from its loss first
    assert depth[col["G.0"]] > depth[col["G.2"]] > depth[col["G.4"]] > depth[col["G.6"]]
    assert depth[col["D.0"]] > depth[col["D.2"]] > depth[col["D.4"]]
    assert min(ratios) > 1e-2  # no vanishing within the generator
    assert "vanishing" not in w.diagnose()


def test_registration_order_does_not_set_depth():
    """Layers registered in the reverse of their use: the depth still follows the data flow."""
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.b, self.a = nn.Linear(32, 10), nn.Linear(32, 32), nn.Linear(64, 32)

        def forward(self, x):
            return self.c(torch.tanh(self.b(torch.tanh(self.a(x)))))

    model = Backwards()
    w = _loop(model, torch.optim.SGD(model.parameters(), lr=0.1), 2)
    depth = dict(zip(w.history.layers, w.history.meta["depth"]))
    assert depth["a"] > depth["b"] > depth["c"]


def test_the_backward_wrapper_reads_the_first_step_only_and_is_removed_at_close():
    original = torch.autograd.backward
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _digits()
    read = []
    with gw.watch(model, optimizer=opt) as w:
        assert torch.autograd.backward is not original
        real = w._graph.on_backward
        w._graph.on_backward = lambda tensors: (read.append(1), real(tensors))
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        assert read == [1] and not w._graph.waiting  # the first step's loss only
    assert torch.autograd.backward is original
    w = gw.watch(model, optimizer=opt)
    w.close()  # closed before any step
    assert torch.autograd.backward is original


# ---- sparse gradients measured; a failure switches off only what failed -----------------------------------------

def test_sparse_embedding_gradients_are_measured_by_their_values():
    torch.manual_seed(0)
    model = wm.Recommender()
    sparse = torch.optim.SparseAdam([model.user.weight, model.item.weight], lr=1e-2)
    dense = torch.optim.Adam([p for n, p in model.named_parameters() if not n.startswith(("user", "item"))])
    truth = []
    sparse.register_step_pre_hook(lambda *_: truth.append(float(model.user.weight.grad.to_dense().norm())))
    g = torch.Generator().manual_seed(0)
    with gw.watch(model, optimizer=[sparse, dense]) as w:
        for _ in range(4):
            u, i = torch.randint(0, 50, (16,), generator=g), torch.randint(0, 40, (16,), generator=g)
            u[:4] = 7  # repeated ids: duplicate entries in the sparse gradient, summed when coalesced
            for o in (sparse, dense):
                o.zero_grad()
            F.mse_loss(model(u, i), torch.randn(16, generator=g)).backward()
            sparse.step()
            dense.step()
    h = w.history
    assert model.user.weight.grad.layout == torch.sparse_coo
    assert h.meta["disabled"] == {}
    np.testing.assert_allclose(h.stat("grad_norm")[:, h.layers.index("user")], truth, rtol=1e-5)
    assert w.diagnose().healthy is not None


def test_a_failing_layer_is_switched_off_alone(monkeypatch):
    """A gradient the fused norm cannot take (simulated: 7 elements) switches off its layer only."""
    model = nn.Sequential(nn.Linear(64, 7, bias=False), nn.Linear(7, 10))
    original = torch._foreach_norm

    def picky(tensors, *args, **kwargs):
        if any(t.numel() == 7 * 64 for t in tensors):
            raise RuntimeError("cannot norm this one")
        return original(tensors, *args, **kwargs)

    monkeypatch.setattr(torch, "_foreach_norm", picky)
    with pytest.warns(Warning, match="switched off there"):
        w = _loop(model, torch.optim.SGD(model.parameters(), lr=0.1), 3)
    h = w.history
    assert np.isnan(h.stat("grad_norm")[:, 0]).all()
    monkeypatch.setattr(torch, "_foreach_norm", original)
    expected = float(torch.sqrt(sum(p.grad.square().sum() for p in model[1].parameters())))
    assert h.stat("grad_norm")[-1, 1] == pytest.approx(expected, rel=1e-5)  # the other layer, measured
    assert any("@ 0" in k for k in h.meta["disabled"])


# ---- no verdict without evidence ---------------------------------------------------------------------------------

def test_diagnose_before_any_step_has_no_verdict():
    model = _mlp()
    w = gw.watch(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    d = w.diagnose()
    w.close()
    assert d.healthy is None and not d.findings
    assert "no step was recorded" in str(d) and "not enough evidence" in d.unmeasured
    assert diagnose(History(["a"], ["grad_norm"])).healthy is None


def test_another_models_optimizer_gives_no_verdict():
    model, other = _mlp(), _mlp(1)
    w = _loop(model, torch.optim.SGD(other.parameters(), lr=0.1), 3)
    assert all(p.grad is not None for p in model.parameters())
    d = w.diagnose()
    # no gradient statistic of this model is judged, and what is seen is a finding: its gradients go nowhere
    assert d.healthy is False and "another model" in d.unmeasured
    assert [(f.kind, f.layers) for f in d.findings] == [("not_in_optimizer", ["0", "2", "4"])]


def test_statistics_switched_off_give_no_verdict(monkeypatch):
    monkeypatch.setattr(torch, "_foreach_norm", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no norms")))
    model = _mlp()
    with pytest.warns(Warning):
        w = _loop(model, torch.optim.SGD(model.parameters(), lr=0.1), 3)
    monkeypatch.undo()
    d = w.diagnose()
    assert d.healthy is None and "no gradient statistic was measured" in d.unmeasured
    assert "switched off" in d.unmeasured and str(d).startswith("not enough evidence")


def test_all_nan_gradients_are_a_finding_not_health():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _digits()
    with gw.watch(model, optimizer=opt) as w:
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x * float("nan")), y).backward()
            opt.step()
    assert all(torch.isnan(p.grad).all() for p in model.parameters())
    d = w.diagnose()
    assert d.healthy is False and "nonfinite" in d


def test_a_measured_healthy_run_is_healthy():
    model = _mlp()
    d = _loop(model, torch.optim.Adam(model.parameters(), lr=1e-3), 5).diagnose()
    assert d.healthy is True and d.unmeasured == ""


# ---- a layer no optimizer steps is never a reference -------------------------------------------------------------

def test_a_head_replaced_after_the_optimizer_is_not_a_reference():
    model = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(64, 64), nn.Tanh())], nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model[8] = nn.Linear(64, 10)
    with torch.no_grad():
        model[8].weight.mul_(1e-4)  # small and static: its ‖g‖/‖θ‖ is huge, it never moves
    head = model[8].weight.detach().clone()
    w = _loop(model, opt, 6, sample_every=1)
    assert torch.equal(head, model[8].weight.detach()) and model[8].weight.grad is not None
    h = w.history
    rel = h.stat("grad_norm") / h.stat("weight_norm")
    assert rel[0, 8 // 2] > 100 * np.nanmedian(rel[0, :4])  # as a reference it would make the body "vanish"
    assert h.meta["optimizer_of"][4] is None and h.meta["optimizer_of"][:4] == [0, 0, 0, 0]
    assert "vanishing" not in w.diagnose()


# ---- dead units from the weight gradient -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["after", "shared", "functional"])
def test_dead_units_from_gradient_rows_whatever_applies_the_relu(kind):
    torch.manual_seed(0)
    model = wm.RELU_NETS[kind]()
    with torch.no_grad():
        model.fc2.bias[:48] = -50.0  # 48 of 64 units off for every input
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    truth = []

    def rows():  # the rows of ∂L/∂W (and bias entries) that are exactly zero, from autograd
        g, b = model.fc2.weight.grad, model.fc2.bias.grad
        truth.append(float(((g.abs().amax(1) + b.abs()) == 0).float().mean()))

    w = _loop(model, opt, 5, before_step=rows, stats="full", sample_every=10)
    h = w.history
    col = h.layers.index("fc2")
    np.testing.assert_allclose(h.stat("grad_dead")[:, col], truth)  # every step, not only sampled ones
    assert truth[0] == 0.75
    f = w.diagnose()["dead_units"]
    assert f.layers == ["fc2"] and f.step == 0


def test_dead_channels_of_a_convolution():
    torch.manual_seed(0)
    model = wm.UNet()
    with torch.no_grad():
        model.enc2.bias[:12] = -50.0
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(8, 1, 8, 8)
    with gw.watch(model, optimizer=opt, stats="full") as w:
        for _ in range(3):
            opt.zero_grad()
            model(x).square().mean().backward()
            g = model.enc2.weight.grad
            dead = float(((g.flatten(1).abs().amax(1) + model.enc2.bias.grad.abs()) == 0).float().mean())
            opt.step()
    assert w.history.stat("grad_dead")[-1, w.history.layers.index("enc2")] == pytest.approx(dead)
    assert dead >= 12 / 16
    assert w.diagnose()["dead_units"].layers[0] == "enc2"


# ---- normalisation layers by what they are -----------------------------------------------------------------------

def test_a_custom_l2_norm_scale_is_not_called_vanishing():
    torch.manual_seed(0)
    model = wm.L2NormNet()
    w = _loop(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), 10)
    h = w.history
    col = h.layers.index("l2norm")
    rel = h.stat("grad_norm")[0] / h.stat("weight_norm")[0]
    assert rel[col] < 1e-2 * np.nanmax(rel)  # compared with the matrices, its relative gradient is tiny
    assert h.meta["vectors"][col]  # but it is a vector of gains, judged on its own
    assert "vanishing" not in w.diagnose()

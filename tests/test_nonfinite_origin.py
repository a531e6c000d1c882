"""Where an inf/NaN started, against the fault injected by the test: a weight set to inf, an inf input, a NaN
made only by a module's backward, and a tied-weight LM (the tied head must not be blamed)."""

import numpy as np
import torch
from torch import nn

import gradwatch as gw


class NanBackward(torch.autograd.Function):
    """Identity forward; NaN gradient backward (only on the steps the test says)."""

    @staticmethod
    def forward(ctx, x, poison):
        ctx.poison = poison
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return (g * float("nan") if ctx.poison else g), None


class Poisoned(nn.Linear):
    poison = False

    def forward(self, x):
        return NanBackward.apply(super().forward(x), self.poison)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), Poisoned(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                         nn.Linear(8, 3)).double()


def _train(net, steps, on_nonfinite, fault):
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with gw.watch(net, opt, on_nonfinite=on_nonfinite) as w:
        for step in range(steps):
            g = torch.Generator().manual_seed(step)
            x, y = torch.randn(16, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)
            fault(net, x, step)
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    return w


def test_a_weight_set_to_inf_is_the_origin_even_on_an_unsampled_step():
    def fault(net, x, step):
        if step == 3:
            with torch.no_grad():
                net[4].weight[0, 0] = float("inf")
    w = _train(_net(), 6, "record", fault)
    f = w.diagnose()["nonfinite"]
    assert f.step == 3 and f.layers[0] == "4" and f.evidence["origin_evidence"] == "weights"
    assert np.isinf(w.history.stat("weight_norm")[3, 2])


def test_locate_names_the_module_whose_backward_made_the_nan():
    def fault(net, x, step):
        net[2].poison = step == 4
    w = _train(_net(), 6, "locate", fault)
    f = w.diagnose()["nonfinite"]
    assert f.step == 4 and f.layers[0] == "2" and f.evidence["origin_evidence"] == "backward"
    # without locate, the gradients alone cannot say: the finding says so
    f2 = _train(_net(), 6, "record", fault).diagnose()["nonfinite"]
    assert f2.step == 4 and f2.evidence["origin_evidence"] == "none" and "locate" in str(f2)


def test_locate_names_the_first_layer_whose_output_was_not_finite_for_an_inf_input():
    def fault(net, x, step):
        if step == 2:
            x[0, 0] = float("inf")
    f = _train(_net(), 4, "locate", fault).diagnose()["nonfinite"]
    assert f.step == 2 and f.layers[0] == "0" and f.evidence["origin_evidence"] == "forward"


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(13, 8)
        self.block = Poisoned(8, 8)
        self.ln = nn.LayerNorm(8)
        self.lm_head = nn.Linear(8, 13, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids):
        return self.lm_head(self.ln(torch.tanh(self.block(self.wte(ids)))))


def test_in_a_tied_lm_the_origin_is_the_module_not_the_tied_head():
    torch.manual_seed(0)
    model = TiedLM().double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with gw.watch(model, opt, on_nonfinite="locate") as w:
        for step in range(4):
            model.block.poison = step == 2
            ids = torch.randint(0, 13, (4, 6))
            opt.zero_grad()
            nn.functional.cross_entropy(model(ids).reshape(-1, 13), ids.reshape(-1)).backward()
            opt.step()
    f = w.diagnose()["nonfinite"]
    assert w.history.layers == ["wte", "block", "ln"]  # lm_head is wte
    assert f.step == 2 and f.layers[0] == "block"

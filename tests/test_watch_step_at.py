"""``w.step(at=n)``: a trainer's own step numbers, and several optimizers stepping within one trainer step
(what the Lightning callback does): one row per step, each layer's values from its own optimizer's step."""

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.errors import ConfigError


def _norm(module):
    return float(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in module.parameters()])))


def test_two_optimizers_in_one_trainer_step_make_one_row():
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    model = nn.ModuleDict({"a": a, "b": b})
    opts = {"a": torch.optim.SGD(a.parameters(), lr=0.1), "b": torch.optim.SGD(b.parameters(), lr=0.1)}
    hand = {}
    with gw.watch(model, stats=["grad_norm", "grad_hist"], sample_every=2) as w:
        for step in (5, 6, 7, 9):  # the trainer's numbers, with a gap
            x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
            for name, head in (("a", a), ("b", b)):
                model.zero_grad(set_to_none=True)  # only this head has a gradient at its optimizer's step
                nn.functional.cross_entropy(head(x), y).backward()
                hand.setdefault(step, {})[name] = _norm(head)
                w.step(at=step)
                opts[name].step()
    h = w.history
    assert h.steps.tolist() == [5, 6, 7, 9]
    for row, step in enumerate(h.steps.tolist()):
        np.testing.assert_allclose(h.stat("grad_norm")[row], [hand[step]["a"], hand[step]["b"]], rtol=1e-6)
    assert h.hist_steps.tolist() == [6]  # one histogram per sampled step (every 2nd), not one per optimizer
    with pytest.raises(RuntimeError, match="closed"):
        w.step(at=10)


def test_steps_only_go_forward():
    w = gw.watch(nn.Linear(2, 2))
    w.step(at=3)
    with pytest.raises(ConfigError, match="'at'|at"):
        w.step(at=2)
    w.close()
    assert w.history.steps.tolist() == [3]

"""``gradients_cleared``: ``optimizer.zero_grad()`` between ``loss.backward()`` and ``optimizer.step()``. The
truth is read a second way, from plain PyTorch: an optimizer pre-step hook sees every ``.grad`` None."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.diagnose import KINDS, SILENT_KINDS


def _train(order: str, steps: int = 8):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 8), torch.randn(32, 1)
    none_at_step: list[bool] = []
    opt.register_step_pre_hook(lambda o, a, k: none_at_step.append(all(p.grad is None for p in model.parameters())))
    with gw.watch(model, opt) as w:
        for _ in range(steps):
            loss = nn.functional.mse_loss(model(x), y)
            if order == "healthy":
                opt.zero_grad()
            loss.backward()
            if order == "cleared":
                opt.zero_grad()
            elif order == "zeroed":
                opt.zero_grad(set_to_none=False)
            opt.step()
    return w, none_at_step


def test_gradients_cleared_before_every_step_are_found_with_every_layer_and_the_first_step():
    w, none_at_step = _train("cleared")
    assert all(none_at_step) and len(none_at_step) == 8  # the truth, from PyTorch itself
    d = w.diagnose()
    f = d["gradients_cleared"]
    assert f.layers == ["0", "2"] and f.step == int(w.history.steps[0])
    assert f.evidence["optimizer_steps"] == len(none_at_step)
    assert d.healthy is False and "zero_grad" in str(f.remedies[0])


@pytest.mark.parametrize("order", ["healthy", "zeroed"])
def test_gradients_present_at_the_step_are_not_this(order):
    w, none_at_step = _train(order)
    assert not any(none_at_step)
    assert "gradients_cleared" not in w.diagnose()


def test_the_rule_is_registered_as_a_silent_bug():
    assert "gradients_cleared" in KINDS and "gradients_cleared" in SILENT_KINDS

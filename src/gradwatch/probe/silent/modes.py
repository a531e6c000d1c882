"""Optimizer steps taken while the model, or a dropout / batch-norm module in it, is in eval mode.

Read at each optimizer step from the modules' ``training`` flags (attributes, no tensor). With the model in
train mode, only a dropout module left in eval mode counts (a batch-norm layer put in eval mode on purpose keeps
its running statistics frozen while fine-tuning); with the whole model in eval mode, every dropout and batch-norm
module does. A model without either behaves the same in both modes and is never reported.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

MAX_NAMES = 20  # module names kept per finding


class EvalModes:
    """The first step, the count of steps and the modules found in eval mode at an optimizer step."""

    def __init__(self, root: nn.Module):
        self.root = root
        modules = list(root.named_modules())
        self.dropouts = [(n or "(model)", m) for n, m in modules if isinstance(m, _DropoutNd) and m.p > 0]
        self.norms = [(n or "(model)", m) for n, m in modules if isinstance(m, _BatchNorm) and m.track_running_stats]
        self.modules = bool(self.dropouts or self.norms)
        self.first: int | None = None
        self.steps = 0
        self.whole_model = False
        self.names: list[str] = []

    def check(self, step: int) -> None:
        if not self.modules:  # no dropout or batch norm: the same in both modes
            return
        if self.root.training:
            bad = [n for n, m in self.dropouts if not m.training]
        else:
            bad = [n for n, m in self.dropouts + self.norms if not m.training]
            self.whole_model = True
        if not bad:
            return
        if self.first is None:
            self.first = step
        self.steps += 1
        for n in bad:
            if n not in self.names and len(self.names) < MAX_NAMES:
                self.names.append(n)

    def to_dict(self) -> dict:
        return {
            "first": self.first,
            "steps": self.steps,
            "modules": self.names,
            "whole_model": self.whole_model,
            "dropout": [n for n, _ in self.dropouts if n in self.names],
            "batchnorm": [n for n, _ in self.norms if n in self.names],
        }

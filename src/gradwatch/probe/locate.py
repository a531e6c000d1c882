"""``on_nonfinite="locate"``: a finite check on every layer module, every step, so the origin of an inf/NaN is
exact.

Each layer module gets a forward hook that records whether its output is finite and tensor hooks that record
whether the gradients w.r.t. its output and its input are finite. Two per-layer columns result:

* ``fwd_nonfinite``: 1 where the layer's output held an inf/NaN on that step;
* ``bwd_nonfinite``: 1 where the gradient w.r.t. the layer's input was non-finite while the one w.r.t. its output
  was finite — the module whose backward produced the first non-finite value.

The flags stay on the device; they cost an ``isfinite`` pass over every layer's output and gradients each step
(about what a forward hook statistic costs; see benchmarks/overhead.py), so the mode is meant for hunting an
inf/NaN, not for every run.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gradwatch.probe.hooks import Hooks, _first_tensor
from gradwatch.probe.layers import Layer

NAMES = ("fwd_nonfinite", "bwd_nonfinite")


class Locator:
    names = NAMES

    def __init__(self, layers: list[Layer]):
        self.layers = layers
        self.hooks = Hooks()
        self._fwd: list[tuple[int, Tensor]] = []
        self._gin: list[tuple[int, Tensor]] = []
        self._gout: list[tuple[int, Tensor]] = []

    def attach(self) -> None:
        if self.hooks:
            return
        for col, layer in enumerate(self.layers):
            if layer.hookable:
                self.hooks.add(layer.module.register_forward_hook(self._hook(col)))

    def _hook(self, col: int):
        def bad(g: Tensor) -> Tensor:
            return ~torch.isfinite(g).all()

        def hook(module: nn.Module, inputs, output) -> None:
            if not torch.is_grad_enabled():
                return
            out, inp = _first_tensor(output), _first_tensor(inputs)
            if out is None:
                return
            with torch.no_grad():
                self._fwd.append((col, bad(out)))
            if out.requires_grad:
                out.register_hook(lambda g: self._gout.append((col, bad(g))))
            if inp is not None and inp.requires_grad:
                inp.register_hook(lambda g: self._gin.append((col, bad(g))))

        return hook

    def detach(self) -> None:
        self.hooks.remove()
        self._fwd, self._gin, self._gout = [], [], []

    def _per_layer(self, flags: list[tuple[int, Tensor]], device) -> Tensor:  # [layers], 1 where any flag
        out = torch.zeros(len(self.layers), device=device)
        if flags:
            cols = torch.tensor([c for c, _ in flags], device=device)
            out.scatter_reduce_(0, cols, torch.stack([f for _, f in flags]).float().to(device), "amax")
        return out

    def take(self, device) -> Tensor:
        """The step's flags ``[2, layers]`` and reset."""
        fwd = self._per_layer(self._fwd, device)
        gin, gout = self._per_layer(self._gin, device), self._per_layer(self._gout, device)
        self._fwd, self._gin, self._gout = [], [], []
        return torch.stack([fwd, gin * (1 - gout)])

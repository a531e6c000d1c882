"""``on_nonfinite="locate"``: a finite check on every layer module, every step, so the origin of an inf/NaN is
exact.

Each layer module gets a forward hook that records whether its output is finite and tensor hooks that record
whether the gradients w.r.t. its output and its input are finite. Two per-layer columns result:

* ``fwd_nonfinite``: 1 where the layer's output held an inf/NaN on that step;
* ``bwd_nonfinite``: 1 where the gradient w.r.t. the layer's input was non-finite while the one w.r.t. its output
  was finite — the module whose backward produced the first non-finite value.

Each hook takes one ``aminmax`` of its tensor (a single pass, NaN-propagating: the tensor is finite exactly when
its minimum and maximum are; ``isfinite(x).all()`` costs several times more on the CPU) and keeps the two 0-d
results on the device; at the end of the step they are stacked and tested at once. The mode still costs a hook
call and a reduction per layer and tensor each step (see benchmarks/overhead.py): it is meant for hunting an
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
        # (layer column, min, max) of each tensor checked this step: finite exactly when both are
        self._fwd: list[tuple[int, Tensor, Tensor]] = []
        self._gin: list[tuple[int, Tensor, Tensor]] = []
        self._gout: list[tuple[int, Tensor, Tensor]] = []
        self._cols: dict[tuple[int, ...], Tensor] = {}  # the flags' columns as a tensor, per pattern

    def attach(self) -> None:
        if self.hooks:
            return
        for col, layer in enumerate(self.layers):
            if layer.hookable:
                self.hooks.add(layer.module.register_forward_hook(self._hook(col)))

    def _hook(self, col: int):
        fwd, gin, gout = self._fwd, self._gin, self._gout

        def hook(module: nn.Module, inputs, output) -> None:
            if not torch.is_grad_enabled():
                return
            out, inp = _first_tensor(output), _first_tensor(inputs)
            if out is None:
                return
            if out.is_floating_point() and out.numel():
                fwd.append((col, *torch.aminmax(out.detach())))
            if out.requires_grad:
                out.register_hook(lambda g: gout.append((col, *torch.aminmax(g.detach()))) if g.numel() else None)
            if inp is not None and inp.requires_grad:
                inp.register_hook(lambda g: gin.append((col, *torch.aminmax(g.detach()))) if g.numel() else None)

        return hook

    def detach(self) -> None:
        self.hooks.remove()
        self._clear()

    def _clear(self) -> None:  # emptied in place: the hooks hold these lists
        self._fwd.clear()
        self._gin.clear()
        self._gout.clear()

    def take(self, device) -> Tensor:
        """The step's flags ``[2, layers]`` and reset: every tensor checked this step tested in one batch."""
        n = len(self.layers)
        flags = [
            (k * n + c, low, high) for k, kept in enumerate((self._fwd, self._gin, self._gout)) for c, low, high in kept
        ]
        self._clear()
        out = torch.zeros(3 * n, device=device)  # [output, input gradient, output gradient] x layers: 1 non-finite
        if flags:
            key = tuple(c for c, _, _ in flags)
            cols = self._cols.get(key)
            if cols is None:  # the same pattern every step: made once
                if len(self._cols) > 64:
                    self._cols.clear()
                cols = self._cols[key] = torch.tensor(key, device=device)
            extremes = torch.stack([v for _, low, high in flags for v in (low, high)]).float().to(device)  # promotes
            bad = (extremes * 0).view(-1, 2).sum(1) != 0  # x·0 is 0 for a finite x, NaN for ±inf and NaN
            out.scatter_reduce_(0, cols, bad.float(), "amax")
        fwd, gin, gout = out.view(3, n)
        return torch.stack([fwd, gin * (1 - gout)])

"""Module hooks as objects (fastai's ``Hook``/``Hooks`` style): registered on ``attach()``, removed by
``detach()`` (safe to call twice), storing only detached values.

:class:`LayerProbes` puts forward hooks on every layer and on the activation that follows it, and full backward
hooks on both, to measure the :class:`~gradwatch.probe.stats.ForwardStat` / :class:`BackwardStat` statistics.
The watcher attaches them only for the steps it samples, so other steps pay nothing; each hook also returns at
once when gradients are disabled (evaluation passes are not training steps). Under gradient accumulation the
values of the micro-batches of a step are averaged. Under DDP they describe the local rank's batch only.

Full backward hooks cannot wrap an activation that works in place (``nn.ReLU(inplace=True)``): its
``gain_activation`` is left NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from gradwatch.probe.layers import Layer
from gradwatch.probe.stats import BackwardStat, ForwardStat


class Hooks:
    """A set of hook handles; ``remove()`` removes them all and may be called any number of times."""

    def __init__(self):
        self.handles: list[RemovableHandle] = []

    def add(self, handle: RemovableHandle) -> None:
        self.handles.append(handle)

    def remove(self) -> None:
        while self.handles:
            self.handles.pop().remove()

    def __bool__(self) -> bool:
        return bool(self.handles)

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _first_tensor(x) -> Tensor | None:
    """The first tensor in a module's output (LSTM: ``(out, (h, c))``; attention: ``(out, weights)``)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


class LayerProbes:
    """Forward and backward hooks that measure sampled statistics per layer into a step accumulator."""

    def __init__(self, layers: list[Layer], forward: list[ForwardStat], backward: list[BackwardStat]):
        self.layers, self.forward, self.backward = layers, forward, backward
        self.names = [s.name for s in forward] + [s.name for s in backward]
        self.hooks = Hooks()
        self._values: list[Tensor] = []  # 0-d tensors
        self._where: list[tuple[int, int]] = []  # (stat row, layer column) of each value

    @property
    def attached(self) -> bool:
        return bool(self.hooks)

    def _put(self, row: int, col: int, value: Tensor | None) -> None:
        if value is not None:
            self._values.append(value.detach().float())
            self._where.append((row, col))

    def _forward_hook(self, col: int, layer: Layer, on_activation: bool) -> Callable:
        stats = [(i, s) for i, s in enumerate(self.forward)]
        has_act = layer.activation is not None

        def hook(module: nn.Module, inputs, output) -> None:
            if not torch.is_grad_enabled():
                return
            with torch.no_grad():
                out = _first_tensor(output)
                if out is None:
                    return
                z = _first_tensor(inputs) if on_activation else None
                for i, stat in stats:
                    # the layer's own output gives act_nonfinite; the activation (if any) gives the rest
                    own = stat.name == "act_nonfinite"
                    if on_activation != own or (not on_activation and not has_act):
                        self._put(i, col, stat.compute(out, z, layer))
        return hook

    def _backward_hook(self, row: int, col: int, stat: BackwardStat) -> Callable:
        def hook(module: nn.Module, grad_input, grad_output) -> None:
            self._put(row, col, stat.gain(_first_tensor(grad_input), _first_tensor(grad_output)))
        return hook

    def attach(self) -> None:
        if self.attached:
            return
        # a layer whose input needs no gradient (the first one) has no ∂L/∂input: its backward_gain stays NaN,
        # and PyTorch's warning about it says nothing the user must act on
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with "
                                "respect to module outputs", category=UserWarning)
        offset = len(self.forward)
        for col, layer in enumerate(self.layers):
            if not layer.hookable:
                continue
            act = layer.activation
            if self.forward:
                self.hooks.add(layer.module.register_forward_hook(self._forward_hook(col, layer, False)))
                if act is not None:
                    self.hooks.add(act.module.register_forward_hook(self._forward_hook(col, layer, True)))
            for j, stat in enumerate(self.backward):
                target = layer.module if stat.name == "backward_gain" else act.module if act is not None else None
                if target is None or getattr(target, "inplace", False):
                    continue
                self.hooks.add(target.register_full_backward_hook(self._backward_hook(offset + j, col, stat)))

    def detach(self) -> None:
        self.hooks.remove()

    def peek_nonfinite_layer(self) -> int | None:
        """The first layer (forward order) whose output had a non-finite element in this step so far."""
        if "act_nonfinite" not in self.names:
            return None
        row = self.names.index("act_nonfinite")
        bad = [col for (r, col), v in zip(self._where, self._values) if r == row and bool(v > 0)]
        return min(bad) if bad else None

    def take(self, device: torch.device) -> Tensor:
        """The step's values ``[stats, layers]`` (mean over the calls of the step; NaN where none) and reset."""
        shape = (len(self.names), len(self.layers))
        sums = torch.zeros(shape, device=device)
        counts = torch.zeros(shape, device=device)
        if self._values:
            rows, cols = (torch.tensor(ix, device=device) for ix in zip(*self._where))
            values = torch.stack(self._values).to(device)
            sums.index_put_((rows, cols), values, accumulate=True)
            counts.index_put_((rows, cols), torch.ones_like(values), accumulate=True)
        self._values, self._where = [], []
        return torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, float("nan")))

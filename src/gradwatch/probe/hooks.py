"""Module hooks as objects (fastai's ``Hook``/``Hooks`` style): registered on ``attach()``, removed by
``detach()`` (safe to call twice), storing only detached values.

:class:`LayerProbes` puts forward (pre-)hooks on every layer and on the activation that follows it to measure
the :class:`~gradwatch.probe.stats.ForwardStat` / :class:`BackwardStat` statistics. The watcher attaches them only
for the steps it samples, so other steps pay nothing; each hook also returns at once when gradients are disabled
(evaluation passes are not training steps). Under gradient accumulation the values of the micro-batches of a step
are averaged. Under DDP they describe the local rank's batch only.

**Backward gains without full backward hooks.** ``register_full_backward_hook`` wraps a module's outputs in a
custom autograd function, and a later in-place op on them (``ReLU(inplace=True)`` after a BatchNorm, in every
torchvision-style ResNet) then fails ("Output 0 of BackwardHookFunction is a view and is being modified
inplace"). Instead, ‖∂L/∂input‖/‖∂L/∂output‖ is measured with tensor hooks (``Tensor.register_hook``):

* the output: a hook on the module's output tensor. Registered before any later in-place op, it receives the
  gradient of the value the module produced (PyTorch keeps hooks registered before an in-place op on the old
  value), which is ∂L/∂output summed over every consumer.
* the input: the forward pre-hook passes the module an alias of its input (``x.view_as(x)``, no copy) and hooks
  that, so the gradient is the one that flows back *through this module* even when ``x`` is also used elsewhere
  (a residual branch). An in-place module (``inplace=True``) is given its input itself: a view modified in place
  loses its hooks; there the gradient is the total ∂L/∂z of the activation's input (the same unless z has another
  consumer, which an in-place activation would have overwritten anyway).

Nothing is cloned and no autograd function is inserted, so in-place ops downstream work as without gradwatch.

**Never break the loop.** Every statistic runs through a :class:`~gradwatch.probe.guard.Guard`: an exception is
reported once, that statistic is switched off on that layer (NaN from then on) and training goes on.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from gradwatch.probe.guard import Guard
from gradwatch.probe.layers import Layer
from gradwatch.probe.stats import ActSaturation, BackwardStat, ForwardStat
from gradwatch.stat_names import ACT_NONFINITE, BACKWARD_GAIN


class Hooks:
    """A set of hook handles; ``remove()`` removes them all and may be called any number of times."""

    def __init__(self) -> None:
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


class _Module:
    """What the hooks of one module (a layer or its activation) measure, fixed at ``attach()``."""

    def __init__(self, col: int, layer: Layer, module: nn.Module):
        self.col, self.layer, self.module = col, layer, module
        self.before: list[tuple[int, ForwardStat]] = []  # from the input, before forward (reads_input stats)
        self.after: list[tuple[int, ForwardStat]] = []  # from the output
        self.gates: list[tuple[int, ActSaturation]] = []  # act_saturation of a recurrent layer, from its gates
        self.gain: tuple[int, BackwardStat] | None = None  # ‖∂L/∂in‖/‖∂L/∂out‖ of this module
        self.inplace = bool(getattr(module, "inplace", False))
        self.open: list[Tensor | None] | None = None  # the gain record of the current call, pre-hook -> hook

    def __bool__(self) -> bool:
        return bool(self.before or self.after or self.gates or self.gain)


class LayerProbes:
    """Forward hooks and tensor hooks that measure sampled statistics per layer into a step accumulator."""

    def __init__(
        self, layers: list[Layer], forward: list[ForwardStat], backward: list[BackwardStat], guard: Guard | None = None
    ):
        self.layers, self.forward, self.backward = layers, forward, backward
        self.names = [s.name for s in forward] + [s.name for s in backward]
        self.guard = guard if guard is not None else Guard()
        self.hooks = Hooks()
        self._generation = 0  # tensor hooks of an earlier attach() do nothing
        self._values: list[Tensor] = []  # 0-d tensors
        self._where: list[tuple[int, int]] = []  # (stat row, layer column) of each value

    @property
    def attached(self) -> bool:
        return bool(self.hooks)

    def _put(self, row: int, col: int, value: Tensor | None) -> None:
        if value is not None:
            self._values.append(value.detach().float())
            self._where.append((row, col))

    # ---- what each module measures ---------------------------------------------------------------------------
    def _plan(self, col: int, layer: Layer) -> list[_Module]:
        own = _Module(col, layer, layer.module)
        act = _Module(col, layer, layer.activation.module) if layer.activation is not None else None
        for row, stat in enumerate(self.forward):
            if stat.name == ACT_NONFINITE:  # the layer's own output locates where inf/NaN start
                own.after.append((row, stat))
            elif isinstance(stat, ActSaturation) and layer.recurrent:
                own.gates.append((row, stat))
            elif act is None:
                if not stat.reads_input:  # without an activation there is no z: those stay NaN
                    own.after.append((row, stat))
            else:
                (act.before if stat.reads_input else act.after).append((row, stat))
        offset = len(self.forward)
        for j, back in enumerate(self.backward):
            target = own if back.name == BACKWARD_GAIN else act
            if target is not None:
                target.gain = (offset + j, back)
        return [m for m in (own, act) if m]

    # ---- hooks -----------------------------------------------------------------------------------------------
    def _pre_hook(self, m: _Module) -> Callable:
        name = m.layer.name

        def hook(module: nn.Module, args: tuple, kwargs: dict):
            if not torch.is_grad_enabled():
                return None
            z = _first_tensor(args)
            if z is None:
                z = _first_tensor(tuple(kwargs.values()))
            if z is None:
                return None
            with torch.no_grad():
                for row, stat in m.before:
                    self._put(row, m.col, self.guard.run(stat.name, name, stat.compute, z, z, m.layer))
            if m.gain is not None:
                return self.guard.run(m.gain[1].name, name, self._hook_input, m, m.gain, args, kwargs)
            return None

        return hook

    def _hook_input(self, m: _Module, gain: tuple[int, BackwardStat], args: tuple, kwargs: dict):
        """Hook the module's input (an alias of it unless the module works in place); returns what the forward
        pre-hook returns: the new (args, kwargs), or None to leave them."""
        m.open = None
        position: int | None = None  # where the input is: args[position], else kwargs[key]
        key: str | None = None
        for i, a in enumerate(args):
            if isinstance(a, Tensor):
                position = i
                break
        else:
            for k, a in kwargs.items():
                if isinstance(a, Tensor):
                    key = k
                    break
        if position is not None:
            x = args[position]
        elif key is not None:
            x = kwargs[key]
        else:
            return None
        if not x.requires_grad:  # e.g. the first layer's input: no ∂L/∂input, the gain stays NaN
            return None
        record: list[Tensor | None] = [None]
        m.open = record
        alias = x if m.inplace else x.view_as(x)
        alias.register_hook(self._input_grad_hook(m, gain, record))
        if alias is x:
            return None
        if position is not None:
            return (*args[:position], alias, *args[position + 1 :]), kwargs
        return args, {**kwargs, key: alias}

    def _input_grad_hook(self, m: _Module, gain: tuple[int, BackwardStat], record: list) -> Callable:
        gen, (row, stat), name = self._generation, gain, m.layer.name

        def hook(grad: Tensor) -> None:
            if gen == self._generation and record[0] is not None:
                self._put(row, m.col, self.guard.run(stat.name, name, lambda: stat.gain(stat.norm(grad), record[0])))

        return hook

    def _output_grad_hook(self, m: _Module, stat: BackwardStat, record: list) -> Callable:
        gen, name = self._generation, m.layer.name

        def hook(grad: Tensor) -> None:
            if gen == self._generation:
                record[0] = self.guard.run(stat.name, name, stat.norm, grad)  # kept until the input's gradient comes

        return hook

    def _post_hook(self, m: _Module) -> Callable:
        name = m.layer.name

        def hook(module: nn.Module, inputs, output) -> None:
            if not torch.is_grad_enabled():
                return
            out = _first_tensor(output)
            if out is None:
                return
            with torch.no_grad():
                for row, stat in m.after:
                    self._put(row, m.col, self.guard.run(stat.name, name, stat.compute, out, None, m.layer))
                for row, stat in m.gates:
                    self._put(row, m.col, self.guard.run(stat.name, name, stat.compute_gates, module, inputs, output))
            record, m.open = m.open, None
            if record is not None and m.gain is not None and out.requires_grad:
                back = m.gain[1]
                self.guard.run(back.name, name, out.register_hook, self._output_grad_hook(m, back, record))

        return hook

    def attach(self) -> None:
        if self.attached:
            return
        self._generation += 1
        for col, layer in enumerate(self.layers):
            if not layer.hookable:  # parameters of the root module: its output is the model's
                continue
            for m in self._plan(col, layer):
                if m.before or m.gain:
                    self.hooks.add(m.module.register_forward_pre_hook(self._pre_hook(m), with_kwargs=True))
                self.hooks.add(m.module.register_forward_hook(self._post_hook(m)))

    def detach(self) -> None:
        self.hooks.remove()
        self._generation += 1

    def peek_nonfinite_layer(self) -> int | None:
        """The first layer (forward order) whose output had a non-finite element in this step so far."""
        if ACT_NONFINITE not in self.names:
            return None
        row = self.names.index(ACT_NONFINITE)
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

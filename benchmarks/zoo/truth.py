"""Ground truth measured by the zoo itself — its own hooks, autograd and the injected faults — never by gradwatch.

A *layer* here is what a watch names: a module owning parameters directly, named by its module path. A parameter
shared by several modules (tied embeddings) belongs to the first module path that owns it; later owners of only
shared parameters are not layers of their own.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def layer_modules(model: nn.Module) -> list[tuple[str, nn.Module, list[nn.Parameter]]]:
    """``(path, module, own parameters)`` in registration order; tied parameters counted once, at first owner."""
    seen: set[int] = set()
    out = []
    for path, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            out.append((path, module, params))
    return out


def _first_tensor(x) -> Tensor | None:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            t = _first_tensor(item)
            if t is not None:
                return t
    if hasattr(x, "values") and callable(x.values):  # ModelOutput and dicts
        return _first_tensor(list(x.values()))
    return None


def _finite(t: Tensor | None) -> bool:
    return t is None or bool(torch.isfinite(t).all())


@dataclass
class NonfiniteTrace:
    """Where the first non-finite value of a step arose, traced with the zoo's own hooks on every layer module.

    The origin, by the rule the issue sets: a layer whose own parameter is non-finite; else the first layer in
    forward (call) order whose output is non-finite; else the first in backward (call) order whose input-gradient
    is non-finite while its output-gradient is finite; else the first in backward order whose parameter gradient is
    non-finite. Use as a context manager; :meth:`reset` before each step, :meth:`origin` after its backward.
    """

    model: nn.Module
    forward_bad: list[str] = field(default_factory=list)
    backward_bad: list[str] = field(default_factory=list)

    def __enter__(self) -> NonfiniteTrace:
        self._layers = layer_modules(self.model)
        self._handles = []
        # the first layer's input needs no gradient: its ∂L/∂input is None, which PyTorch warns about
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        for path, module, _ in self._layers:
            self._handles.append(module.register_forward_hook(self._on_forward(path)))
            self._handles.append(module.register_full_backward_hook(self._on_backward(path)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._warnings.__exit__(*exc)

    def _on_forward(self, path: str):
        def hook(module, inputs, output):
            if not _finite(_first_tensor(output)):
                self.forward_bad.append(path)

        return hook

    def _on_backward(self, path: str):
        def hook(module, grad_input, grad_output):
            if _finite(_first_tensor(grad_output)) and not _finite(_first_tensor(grad_input)):
                self.backward_bad.append(path)

        return hook

    def reset(self) -> None:
        self.forward_bad, self.backward_bad = [], []

    def origin(self) -> tuple[str, str] | None:
        """``(layer, how it was found)`` or None when the step was finite throughout."""
        for path, _, params in self._layers:
            if not all(_finite(p.detach()) for p in params):
                return path, "parameter"
        if self.forward_bad:
            return self.forward_bad[0], "forward output"
        if self.backward_bad:
            return self.backward_bad[0], "backward input-gradient"
        for path, _, params in reversed(self._layers):  # backward order ≈ reverse registration order
            if not all(_finite(p.grad) for p in params):
                return path, "parameter gradient"
        return None


def grads_finite(model: nn.Module) -> bool:
    return all(_finite(p.grad) for p in model.parameters())


def relative_grads(model: nn.Module) -> dict[str, float]:
    """‖∂L/∂θ‖/‖θ‖ per layer from the gradients autograd left in ``p.grad`` (NaN for a layer without one)."""
    out = {}
    for path, _, params in layer_modules(model):
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            out[path] = math.nan
            continue
        g = math.sqrt(sum(float(x.double().square().sum()) for x in grads))
        w = math.sqrt(sum(float(p.detach().double().square().sum()) for p in params))
        out[path] = g / w if w > 0 else math.inf
    return out


def grad_norms(model: nn.Module) -> dict[str, float]:
    """‖∂L/∂θ‖ per layer (NaN for a layer without a gradient)."""
    out = {}
    for path, _, params in layer_modules(model):
        grads = [p.grad for p in params if p.grad is not None]
        out[path] = math.sqrt(sum(float(x.double().square().sum()) for x in grads)) if grads else math.nan
    return out


def relative_ratio(model: nn.Module, first: str, last: str) -> float:
    """‖g‖/‖θ‖ of layer ``first`` over that of layer ``last``, from autograd's p.grad."""
    rel = relative_grads(model)
    return rel[first] / rel[last]


_FUNCTIONAL = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid}


def activation_gain(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> float:
    """‖∂L/∂(fc1's output)‖ / ‖∂L/∂(logits)‖ by autograd, re-running the MLP functionally (F.linear, torch.tanh…)
    so that no module hook — the watch's included — sees this extra pass."""
    h, outs = x, []
    for module in model:
        if isinstance(module, nn.Linear):
            h = F.linear(h, module.weight, module.bias)
            outs.append(h)
        else:
            h = _FUNCTIONAL[type(module)](h)
    grads = torch.autograd.grad(F.cross_entropy(h, y), [outs[0], outs[-1]])
    return float(grads[0].norm() / grads[1].norm())


class UpdateMeter:
    """‖Δθ‖/‖θ‖ per layer of one optimizer step: :meth:`before` the step, :meth:`after` it."""

    def __init__(self, model: nn.Module):
        self.layers = layer_modules(model)

    def before(self) -> None:
        self._copy = [[p.detach().clone() for p in params] for _, _, params in self.layers]

    def after(self) -> dict[str, float]:
        out = {}
        for (path, _, params), old in zip(self.layers, self._copy):
            d = math.sqrt(sum(float((p.detach() - o).double().square().sum()) for p, o in zip(params, old)))
            w = math.sqrt(sum(float(o.double().square().sum()) for o in old))
            out[path] = d / w if w > 0 else math.inf
        return out


@contextmanager
def recorded_updates(
    model: nn.Module, optimizer, before: Callable[[], None] | None = None
) -> Iterator[list[dict[str, float]]]:
    """Inside the block, ‖Δθ‖/‖θ‖ per layer of every step ``optimizer`` takes (one dict per step), from the zoo's
    own step hooks; ``before()`` is also called before each step, when ``p.grad`` holds the step's gradient."""
    meter, updates = UpdateMeter(model), []

    def pre(*_):
        if before is not None:
            before()
        meter.before()

    handles = [
        optimizer.register_step_pre_hook(pre),
        optimizer.register_step_post_hook(lambda *_: updates.append(meter.after())),
    ]
    try:
        yield updates
    finally:
        for h in handles:
            h.remove()


class ForwardHooks:
    """A forward hook on each named module while the ``with`` block is open; subclasses define ``_hook(name)``."""

    def __init__(self, model: nn.Module, names: list[str]):
        self.modules = {n: model.get_submodule(n) for n in names}

    def __enter__(self):
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()

    def _hook(self, name: str):
        raise NotImplementedError


class OutputGradNorms(ForwardHooks):
    """‖∂L/∂(output)‖ of the named modules on every backward of the real training pass: a forward hook puts a
    tensor hook on each output (no extra pass, nothing the watch's module hooks see)."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__(model, names)
        self.norms: dict[str, list[float]] = {n: [] for n in names}

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if output.requires_grad:
                output.register_hook(lambda g: self.norms[name].append(float(g.norm())))

        return hook

    def ratio(self, first: str, last: str) -> list[float]:
        """Per step, the gradient at ``first``'s output over that at ``last``'s."""
        return [a / b for a, b in zip(self.norms[first], self.norms[last])]


class UnitFractions:
    """Per activation module (``nn.ReLU``/``nn.Tanh``/``nn.Sigmoid``, by the path of the layer before it) on each
    forward: the fraction of units zero for the whole batch (ReLU) and the fraction of inputs where σ'(z) is below
    1 % of its maximum (tanh: 1 − tanh² < 0.01; sigmoid: σ(1−σ) < 0.0025)."""

    def __init__(self, model: nn.Sequential):
        self.pairs: list[tuple[str, nn.Module]] = []
        names = list(model._modules)
        for before, after in zip(names[:-1], names[1:]):
            module = model._modules[after]
            if isinstance(module, (nn.ReLU, nn.Tanh, nn.Sigmoid)):
                self.pairs.append((before, module))
        self.dead: dict[str, list[float]] = {p: [] for p, _ in self.pairs}
        self.saturated: dict[str, list[float]] = {p: [] for p, _ in self.pairs}

    def __enter__(self) -> UnitFractions:
        self._handles = [m.register_forward_hook(self._hook(path)) for path, m in self.pairs]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()

    def _hook(self, path: str):
        def hook(module, inputs, output):
            z, a = inputs[0].detach(), output.detach()
            self.dead[path].append(float((a == 0).all(dim=0).float().mean()))
            if isinstance(module, nn.Tanh):
                d, peak = 1 - a.square(), 1.0
            elif isinstance(module, nn.Sigmoid):
                d, peak = a * (1 - a), 0.25
            else:
                d, peak = (z > 0).float(), 1.0
            self.saturated[path].append(float((d < 0.01 * peak).float().mean()))

        return hook


def falls(losses: list[float], factor: float = 0.8, window: int = 10) -> bool:
    """Whether the mean of the last ``window`` losses is below ``factor`` × the mean of the first ``window``."""
    first = sum(losses[:window]) / window
    last = sum(losses[-window:]) / window
    return math.isfinite(last) and last < factor * first


class PremiseError(RuntimeError):
    """A scenario's run did not show what its label claims (the model did not learn, the fault did not happen…):
    the scenario itself is wrong, whatever the diagnosis says."""


def check(condition: bool, message: str) -> None:
    """Verify a scenario's premise on its own run; raise :class:`PremiseError` with ``message`` if it fails."""
    if not condition:
        raise PremiseError(message)

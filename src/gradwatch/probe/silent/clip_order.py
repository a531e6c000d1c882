"""``clip_grad_norm_`` / ``clip_grad_value_`` / ``clip_grads_with_norm_`` called while a GradScaler's scale is still
on the gradients.

Under mixed precision the loss is multiplied by the scaler's scale before backward, so the gradients are too
until ``scaler.unscale_(optimizer)`` (or ``scaler.step``) divides it out. Clipping before that compares a scaled
norm with the threshold: the clip is either always active or never. Seen here by wrapping the clipping
functions and ``GradScaler.scale`` / ``update`` while a watch is open: a scaler that scaled a loss since its last
``update()`` and has not unscaled the optimizer that owns the clipped parameters (its per-optimizer stage is still
READY) means the clip saw scaled gradients.

The functions are replaced when the first watch opens and restored when the last one closes (only if nothing
wrapped them again since; a wrapper left in place does nothing once no watch is open).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import torch

CLIPPING = ("clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_")  # the last: torch ≥ 2.6
_open: weakref.WeakSet = weakref.WeakSet()  # open silent probes
_scaling: weakref.WeakSet = weakref.WeakSet()  # scalers that scaled a loss since their last update()
_saved: dict[tuple[Any, str], tuple[Any, Any]] = {}  # (owner, name) -> (original, wrapper)


def _scaler_class():
    try:
        from torch.amp.grad_scaler import GradScaler
    except ImportError:  # pragma: no cover - torch < 2.3
        return None
    return GradScaler


def _wrap_clip(original, what: str):
    @functools.wraps(original)
    def clip(parameters, *args, **kwargs):
        if _open:
            parameters = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
            if _scaling:
                for probe in list(_open):
                    probe.clipping(parameters, list(_scaling), what)
        return original(parameters, *args, **kwargs)

    return clip


def _wrap_scale(original):
    @functools.wraps(original)
    def scale(self, outputs):
        if _open and self.is_enabled():
            _scaling.add(self)
        return original(self, outputs)

    return scale


def _wrap_update(original):
    @functools.wraps(original)
    def update(self, *args, **kwargs):
        _scaling.discard(self)
        return original(self, *args, **kwargs)

    return update


def scaled(scaler: Any, optimizer: Any) -> bool:
    """Whether ``scaler``'s scale is still on the gradients that ``optimizer`` will step on."""
    from torch.amp.grad_scaler import OptState

    state = scaler._per_optimizer_states.get(id(optimizer))
    return state is None or state.get("stage") is OptState.READY


def _targets() -> list[tuple[Any, str, Any]]:
    from torch.nn.utils import clip_grad

    out: list[tuple[Any, str, Callable[[Any], Any]]] = []
    for owner in (torch.nn.utils, clip_grad):
        for name in CLIPPING:
            if hasattr(owner, name):
                out.append((owner, name, functools.partial(_wrap_clip, what=name)))
    scaler = _scaler_class()
    if scaler is not None:
        out += [(scaler, "scale", _wrap_scale), (scaler, "update", _wrap_update)]
    return out


def register(probe) -> None:
    if not _saved:
        for owner, name, wrap in _targets():
            original = getattr(owner, name)
            wrapper = wrap(original)
            _saved[(owner, name)] = (original, wrapper)
            setattr(owner, name, wrapper)
    _open.add(probe)


def unregister(probe) -> None:
    _open.discard(probe)
    if not _open:
        while _saved:
            (owner, name), (original, wrapper) = _saved.popitem()
            if getattr(owner, name) is wrapper:
                setattr(owner, name, original)
        _scaling.clear()

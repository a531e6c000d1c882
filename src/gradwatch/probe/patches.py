"""What a watch sees of the training loop beyond the optimizer's step hooks, while it is open.

* ``torch.nn.utils.clip_grad_norm_``: before clipping, every open watch that watches one of the clipped
  parameters records the per-layer gradient norm (``grad_norm_preclip``), so the user sees what the model
  produced as well as what the optimizer stepped on.
* ``torch.amp.GradScaler.step``: when the scaler skips the optimizer step (non-finite gradients), the watch
  records that step from the (unscaled) gradients it would have taken, marked as skipped.

The functions are replaced when the first watch opens and restored when the last one closes; code that imported
``clip_grad_norm_`` by name before that keeps the original (call ``Watcher.record_preclip()`` yourself there).
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import torch

_open: weakref.WeakSet = weakref.WeakSet()
_saved: dict[tuple[Any, str], Any] = {}


def _clip_targets() -> list[tuple[Any, str]]:
    import torch.nn.utils.clip_grad as clip_grad

    return [(torch.nn.utils, "clip_grad_norm_"), (clip_grad, "clip_grad_norm_")]


def _scaler_class():
    try:
        from torch.amp.grad_scaler import GradScaler
    except ImportError:  # pragma: no cover - torch < 2.3
        return None
    return GradScaler


def _wrap_clip(original):
    @functools.wraps(original)
    def clip_grad_norm_(parameters, *args, **kwargs):
        if _open:
            parameters = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
            ids = {id(p) for p in parameters}
            for w in list(_open):
                w._before_clip(ids)
        return original(parameters, *args, **kwargs)
    clip_grad_norm_.__gradwatch_original__ = original
    return clip_grad_norm_


def _wrap_scaler_step(original):
    @functools.wraps(original)
    def step(self, optimizer, *args, **kwargs):
        watchers = [w for w in list(_open) if w._watches_optimizer(optimizer)]
        before = [w._optimizer_steps for w in watchers]
        result = original(self, optimizer, *args, **kwargs)
        for w, n in zip(watchers, before):
            if w._optimizer_steps == n:  # the scaler did not call optimizer.step(): a skipped step
                w._skipped_step(optimizer)
        return result
    step.__gradwatch_original__ = original
    return step


def register(watcher) -> None:
    """Start showing the loop to ``watcher`` (patch on the first open watch)."""
    if not _saved:
        for owner, name in _clip_targets():
            _saved[(owner, name)] = getattr(owner, name)
            setattr(owner, name, _wrap_clip(getattr(owner, name)))
        scaler = _scaler_class()
        if scaler is not None:
            _saved[(scaler, "step")] = scaler.step
            scaler.step = _wrap_scaler_step(scaler.step)
    _open.add(watcher)


def unregister(watcher) -> None:
    """Stop showing the loop to ``watcher`` (restore on the last close). Safe to call twice."""
    _open.discard(watcher)
    if not _open:  # a watch collected without close() leaves the wrappers in place: they do nothing then
        while _saved:
            (owner, name), original = _saved.popitem()
            setattr(owner, name, original)

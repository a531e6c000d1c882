"""What a watch sees of the training loop beyond the optimizer's step hooks, while it is open.

* ``torch.autograd.backward`` (what ``loss.backward()`` calls): before the call each open watch may look at the
  loss's graph (the first step's, :mod:`gradwatch.probe.graph`) and note its gradients' identities and versions;
  after it, a watch whose gradients the call changed measures them (the end-of-backward measurement of
  :mod:`gradwatch.probe.preclip`). One Python call per backward, whatever the model's size.
* ``torch.nn.utils.clip_grad_norm_``: every open watch that watches one of the clipped parameters learns that the
  gradients it measured at the end of backward are the pre-clip ones (``grad_norm_preclip``; see
  :mod:`gradwatch.probe.preclip`, which sees any in-place clipping by itself — this wrapper is what still works
  where no end-of-backward hook fires, FSDP2's sharded parameters).
* ``torch.amp.GradScaler.unscale_``: the watches of that optimizer measure the unscaled gradients.
* ``torch.amp.GradScaler.step``: when the scaler skips the optimizer step (non-finite gradients), the watch
  records that step from the (unscaled) gradients it would have taken, marked as skipped.

The functions are replaced when the first watch opens and restored when the last one closes (under a lock: watches
open and close in several threads, e.g. the playground's runs); code that imported ``clip_grad_norm_`` or
``backward`` by name before that keeps the original. A function that someone else wrapped again since is left as
it is (the wrapper then does nothing); when a watch opens again above it, the chain holds two wrappers of
``backward`` and only the outer one acts (so does a ``backward`` called inside a ``backward``: it is measured when
the outer call returns).
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any

import torch

_open: weakref.WeakSet = weakref.WeakSet()
_saved: dict[tuple[Any, str], Any] = {}
_lock = threading.Lock()
_ORIGINAL = "__gradwatch_original__"  # on each wrapper: the function it replaced
_inside = threading.local()  # .backward: this thread is inside our backward wrapper (a chain of two acts once)


def _replacing(wrapper: Callable, original: Callable) -> Callable:
    """``wrapper``, marked with the function it replaces."""
    setattr(wrapper, _ORIGINAL, original)  # a function's attributes are not typed: set by name
    return wrapper


def _clip_targets() -> list[tuple[Any, str]]:
    import torch.nn.utils.clip_grad as clip_grad

    return [(torch.nn.utils, "clip_grad_norm_"), (clip_grad, "clip_grad_norm_")]


def _scaler_class():
    try:
        from torch.amp.grad_scaler import GradScaler
    except ImportError:  # pragma: no cover - torch < 2.3
        return None
    return GradScaler


def _wrap_backward(original: Callable) -> Callable:
    @functools.wraps(original)
    def backward(tensors, *args, **kwargs):
        if not _open or getattr(_inside, "backward", False):  # a wrapper of ours under this one: it does nothing
            return original(tensors, *args, **kwargs)
        with _lock:  # another thread may open or close a watch meanwhile
            watchers = list(_open)
        seen = [(w, w._before_backward(tensors)) for w in watchers]
        _inside.backward = True
        try:
            result = original(tensors, *args, **kwargs)
        finally:
            _inside.backward = False
        for w, before in seen:
            if before is not None:
                w._after_backward(before)
        return result

    return _replacing(backward, original)


def _wrap_clip(original: Callable) -> Callable:
    @functools.wraps(original)
    def clip_grad_norm_(parameters, *args, **kwargs):
        if _open:
            parameters = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
            ids = {id(p) for p in parameters}
            for w in list(_open):
                w._before_clip(ids)
        return original(parameters, *args, **kwargs)

    return _replacing(clip_grad_norm_, original)


def _wrap_scaler_step(original: Callable) -> Callable:
    @functools.wraps(original)
    def step(self, optimizer, *args, **kwargs):
        watchers = [w for w in list(_open) if w._watches_optimizer(optimizer)]
        before = [w._optimizer_steps for w in watchers]
        result = original(self, optimizer, *args, **kwargs)
        for w, n in zip(watchers, before):
            if w._optimizer_steps == n:  # the scaler did not call optimizer.step(): a skipped step
                w._skipped_step(optimizer)
        return result

    return _replacing(step, original)


def _wrap_scaler_unscale(original: Callable) -> Callable:
    @functools.wraps(original)
    def unscale_(self, optimizer, *args, **kwargs):
        result = original(self, optimizer, *args, **kwargs)
        for w in list(_open):
            if w._watches_optimizer(optimizer):
                w._after_unscale()
        return result

    return _replacing(unscale_, original)


def _patch(owner: Any, name: str, wrap: Callable[[Callable], Callable]) -> None:
    _saved[(owner, name)] = getattr(owner, name)
    setattr(owner, name, wrap(getattr(owner, name)))


def register(watcher) -> None:
    """Start showing the loop to ``watcher`` (patch on the first open watch)."""
    with _lock:
        if not _saved:
            _patch(torch.autograd, "backward", _wrap_backward)
            for owner, name in _clip_targets():
                _patch(owner, name, _wrap_clip)
            scaler = _scaler_class()
            if scaler is not None:
                _patch(scaler, "step", _wrap_scaler_step)
                _patch(scaler, "unscale_", _wrap_scaler_unscale)
        _open.add(watcher)


def unregister(watcher) -> None:
    """Stop showing the loop to ``watcher`` (restore on the last close). Safe to call twice."""
    with _lock:
        _open.discard(watcher)
        if not _open:  # a watch collected without close() leaves the wrappers in place: they do nothing then
            while _saved:
                (owner, name), original = _saved.popitem()
                if getattr(getattr(owner, name), _ORIGINAL, None) is original:  # not wrapped again since
                    setattr(owner, name, original)

"""``.grad`` still holding the values of the previous optimizer step when the next backward adds to it.

Two stages, so that a loop that zeroes its gradients the default way pays almost nothing:

* **survival** (:meth:`StaleGrads.mark`, :meth:`StaleGrads.survived`): after optimizer ``k`` steps, a weak
  reference to the ``.grad`` of each layer's first parameter; at ``k``'s next step, whether any of them is still
  the same tensor. ``zero_grad()`` sets gradients to None by default, so they never survive; with
  ``set_to_none=False`` (zeroing in place) or without ``zero_grad()`` they do, and the next stage decides.
* **proof** (:meth:`StaleGrads.arm`, :meth:`StaleGrads.confirm`): one tensor hook per layer on that parameter.
It runs when the next backward reaches the parameter, before the new gradient is added: if ``.grad`` is then the
very tensor the optimizer stepped on, unchanged since (same object, same version counter), it was not zeroed.
Each later backward must find it the same tensor with one more addition (no zeroing in between), and at the next
step of ``k`` it still is: the optimizer steps on old plus new gradients. A ``zero_grad()`` (set to None, or zeroed
in place) anywhere in between clears it, so a parameter that a second model's backward reaches between the steps
of its own optimizer (a GAN's discriminator) is not reported. Under DDP the reducer writes into ``.grad`` as well:
there only the object is compared after the first backward.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch.utils.hooks import RemovableHandle


def _sharded(p: torch.Tensor) -> bool:
    """A DTensor (FSDP2, tensor parallel): its ``.grad`` is written by the sharding's reduce-scatter, not
    accumulated by autograd, so a tensor hook on it never fires — and hooking it is left to the sharding."""
    return hasattr(p, "placements")


class _Armed:
    __slots__ = ("fires", "handle", "k", "ref", "stale", "version")

    def __init__(self, k: int, grad: torch.Tensor):
        self.k, self.ref, self.version = k, weakref.ref(grad), grad._version
        self.fires, self.stale = 0, False
        self.handle: RemovableHandle | None = None


class StaleGrads:
    """Per parameter index: the first step and number of steps whose gradient held the previous step's values."""

    def __init__(self, params: list[torch.Tensor], strict: bool):
        self.params, self.strict = params, strict
        self.found: dict[int, list[int]] = {}  # param index -> [first step, steps found]
        self._armed: dict[int, _Armed] = {}
        self._marked: dict[int, list[tuple[int, weakref.ref]]] = {}  # optimizer -> (param index, its .grad)

    def mark(self, k: int, indices: list[int]) -> None:
        """Optimizer ``k`` has just stepped: remember (weakly) the gradients it stepped on."""
        params = self.params
        self._marked[k] = [(i, weakref.ref(params[i].grad)) for i in indices if params[i].grad is not None]

    def survived(self, k: int) -> bool:
        """Optimizer ``k`` is about to step again: is one of the gradients it last stepped on still ``.grad``?"""
        if not self._marked:  # the common case: nothing marked
            return False
        marked = self._marked.pop(k, None)
        if not marked:
            return False
        params = self.params
        return any(params[i].grad is not None and params[i].grad is ref() for i, ref in marked)

    def arm(self, k: int, indices: list[int]) -> None:
        """Optimizer ``k`` has just stepped on the parameters ``indices``: watch their next backward."""
        for i in indices:
            p = self.params[i]
            if p.grad is None or i in self._armed or not p.requires_grad or _sharded(p):
                continue
            entry = _Armed(k, p.grad)
            entry.handle = p.register_hook(self._hook(p, entry))
            self._armed[i] = entry

    def _hook(self, p: torch.Tensor, e: _Armed) -> Callable:
        def hook(_grad: torch.Tensor) -> None:
            g = p.grad
            if g is None or g is not e.ref():
                e.stale = False
            elif e.fires == 0:
                e.stale = g._version == e.version
            elif e.stale:
                e.stale = not self.strict or g._version == e.version + 1
            e.fires += 1
            if g is not None:
                e.ref, e.version = weakref.ref(g), g._version

        return hook

    def confirm(self, k: int, step: int) -> bool | None:
        """Optimizer ``k`` is about to step (the row ``step``): the armed parameters of ``k`` are judged. Returns
        whether a backward ran since they were armed (None: none were armed); an optimizer stepped with a closure
        (``opt.step(closure)``) runs its backward after this point, so its hooks never fire before it."""
        fired = None
        if not self._armed:  # the common case: nothing armed
            return fired
        for i in [i for i, e in self._armed.items() if e.k == k]:
            e = self._armed.pop(i)
            if e.handle is not None:
                e.handle.remove()
            fired = bool(fired) or e.fires > 0
            g = self.params[i].grad
            if e.stale and g is not None and g is e.ref():
                first = self.found.setdefault(i, [step, 0])
                first[1] += 1
        return fired

    def remove(self) -> None:
        for e in self._armed.values():
            if e.handle is not None:
                e.handle.remove()
        self._armed.clear()

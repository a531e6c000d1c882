"""The gradient before the loop's clipping, whoever clips it (``grad_norm_preclip``).

A watch with optimizers reads its statistics in their step pre-hooks, so ``grad_norm`` is what the optimizer steps
on: after any clipping. What the model itself produced is measured where it is complete and not yet touched, at
the end of every backward pass, and kept when the loop then changed the gradients:

* One ``register_post_accumulate_grad_hook`` per watched parameter. The first that fires in a backward pass queues
  a final callback of the autograd engine, which queues itself once more, so that it runs after the callbacks
  DDP (all-reduce) and FSDP (reduce-scatter) queue during the pass: there every ``.grad`` is final. It measures the
  per-parameter norms (one fused reduction, kept on the device) and stamps each gradient (identity and version
  counter). With gradient accumulation the last micro-batch's measurement stands: the accumulated gradient.
* ``GradScaler.unscale_`` measures again (seen through :mod:`gradwatch.probe.patches`): the unscaled values.
* At the optimizer's step the stamps are compared. Unchanged: nothing touched the gradients, these norms *are*
  the step's ``grad_norm`` (so the default path still computes them once) and there is no pre-clip value.
  Changed — an in-place clip (``torch.nn.utils.clip_grad_norm_``, ``clip_grads_with_norm_``, accelerate's,
  Lightning's, a hand-written ``p.grad.mul_``) or a ``p.grad`` replaced — and these norms are the step's
  ``grad_norm_preclip``. A call of ``clip_grad_norm_`` marks them changed as well.

Limits: a change made through ``p.grad.data`` does not move the version counter (call ``clip_grad_norm_`` or
``Watcher.record_preclip()``); parameters whose ``.grad`` autograd does not accumulate (FSDP2's sharded
parameters) fire no hook — there the wrapped ``clip_grad_norm_`` records the pre-clip values as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

_engine = torch.autograd.Variable._execution_engine  # the autograd engine: queue_callback runs at the pass's end


@dataclass
class Measured:
    """The norms measured at the end of the last backward pass (or after unscaling)."""

    present: list[int]  # watched-parameter indices that had a gradient
    norms: Tensor  # [len(present)] ‖g‖₂ per parameter, on the device
    stamps: list[tuple[int, int]]  # (id, version) of each gradient then
    clipped: bool = False  # clip_grad_norm_ was called since


class PreClip:
    """Calls ``on_backward_end()`` once at the end of each backward pass that reached ``params``, and keeps what
    it measured (:meth:`note`) until the step asks for it (:meth:`lookup`)."""

    def __init__(self, params: Sequence[Tensor], on_backward_end: Callable[[], None]):
        self._params = list(params)
        # weakly: the hooks live on the model's parameters and must not keep a watch that was never closed alive
        self._on_end = weakref.WeakMethod(on_backward_end)  # type: ignore[arg-type]
        self._queued = False
        self.measured: Measured | None = None
        self.measuring = False  # the watch sets it for the backward passes it measures
        self._handles = [
            p.register_post_accumulate_grad_hook(self._accumulated) for p in self._params if p.requires_grad
        ]

    # ---- the end of a backward pass --------------------------------------------------------------------------
    def _accumulated(self, _param: Tensor) -> None:
        if not self._queued and self.measuring:  # a backward the watch does not measure (every=N) costs no callback
            self._queued = True
            _engine.queue_callback(self._after_others)

    def norms(self, grads: list[Tensor]) -> Tensor:
        """‖g‖₂ of ``grads`` ``[len(grads)]``, float32, in one fused pass; a gradient made with ``create_graph=True``
        is measured detached, so the kept norms hold no graph."""
        if any(g.requires_grad for g in grads):
            grads = [g.detach() for g in grads]
        return torch.stack(torch._foreach_norm(grads, 2)).float()

    def _after_others(self) -> None:  # runs after the callbacks queued during the pass (DDP, FSDP)
        _engine.queue_callback(self._end)

    def _end(self) -> None:
        self._queued = False
        on_end = self._on_end()
        if on_end is None:  # the watch is gone without close(): take the hooks off the model
            self.remove()
            return
        on_end()

    # ---- what was measured -----------------------------------------------------------------------------------
    @staticmethod
    def _stamps(grads: Sequence[Tensor]) -> list[tuple[int, int]]:
        """(identity, version) of each gradient: what changes when the loop touches or replaces it."""
        return [(id(g), g._version) for g in grads]

    def note(self, present: list[int], norms: Tensor, grads: Sequence[Tensor]) -> None:
        """The norms of the gradients ``grads`` (the ``.grad`` of ``present``, just read) now, before anything else
        touches them."""
        self.measured = Measured(present, norms, self._stamps(grads))

    def mark_clipped(self) -> bool:
        """A clip function was called; False when there is no measurement to mark."""
        if self.measured is None:
            return False
        self.measured.clipped = True
        return True

    def lookup(self, present: list[int], grads: Sequence[Tensor]) -> tuple[Tensor, bool] | None:
        """(norms of ``present`` measured at the end of backward, whether the gradients changed since), or None
        when they were not all measured there."""
        m = self.measured
        if m is None:
            return None
        now = self._stamps(grads)
        if present == m.present:
            return m.norms, m.clipped or m.stamps != now
        where = {p: j for j, p in enumerate(m.present)}
        if any(i not in where for i in present):
            return None
        positions = [where[i] for i in present]
        norms = m.norms[torch.tensor(positions, device=m.norms.device)]
        return norms, m.clipped or [m.stamps[j] for j in positions] != now

    def reset(self) -> None:
        """The step is over: the next one starts with nothing measured."""
        self.measured = None
        self._queued = False

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self.reset()

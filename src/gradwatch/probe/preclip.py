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

On the CPU a large gradient (at least ``HOT_MIN`` elements) is measured in its own accumulate hook, as soon as it is
complete: it is still in the cache then, and a fused pass at the end of backward would read it back from memory
(measured: about half the cost of the per-step norm on a 20×256 MLP). The value is used only if that ``.grad`` is
still the same tensor at the same version at the end of backward (so DDP's all-reduce, which writes the gradients
after their hooks, makes it measured again there).

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


HOT_MIN = 1 << 15  # elements (128 KiB in float32): smaller gradients are cheaper in the one fused pass


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
        self._hot: dict[int, tuple[Tensor, int, Tensor]] = {}  # index -> (.grad, its version, its norm)
        self._handles = [
            p.register_post_accumulate_grad_hook(self._hot_hook(i) if self._is_hot(p) else self._accumulated)
            for i, p in enumerate(self._params)
            if p.requires_grad
        ]

    @staticmethod
    def _is_hot(p: Tensor) -> bool:
        return p.device.type == "cpu" and p.numel() >= HOT_MIN and getattr(p, "placements", None) is None

    # ---- the end of a backward pass --------------------------------------------------------------------------
    def _accumulated(self, _param: Tensor) -> None:
        if not self._queued and self.measuring:  # a backward the watch does not measure (every=N) costs no callback
            self._queued = True
            _engine.queue_callback(self._after_others)

    def _hot_hook(self, i: int) -> Callable[[Tensor], None]:
        def hook(param: Tensor) -> None:
            g = param.grad
            if self.measuring and g is not None and g.layout == torch.strided:
                self._hot[i] = (g, g._version, torch.linalg.vector_norm(g.detach()))
            self._accumulated(param)

        return hook

    def norms(self, present: Sequence[int], grads: list[Tensor]) -> Tensor:
        """‖g‖₂ of ``grads`` (the gradients of ``present``) ``[len(grads)]``, float32: those measured hot and not
        changed since, the others in one fused pass."""
        hot, self._hot = self._hot, {}
        if any(g.requires_grad for g in grads):  # made with create_graph=True: the norms must not keep the graph
            grads = [g.detach() for g in grads]
        if not hot:
            return torch.stack(torch._foreach_norm(grads, 2)).float()
        out: list[Tensor | None] = [None] * len(grads)
        cold = []
        for j, (i, g) in enumerate(zip(present, grads)):
            seen = hot.get(i)
            if seen is not None and seen[0] is g and seen[1] == g._version:
                out[j] = seen[2]
            else:
                cold.append(j)
        if cold:
            for j, norm in zip(cold, torch._foreach_norm([grads[j] for j in cold], 2)):
                out[j] = norm
        return torch.stack(out).float()  # type: ignore[arg-type]

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
    def _stamps(self, present: Sequence[int], grads: Sequence[Tensor] | None = None) -> list[tuple[int, int]]:
        """(identity, version) of the ``.grad`` of each of ``present`` (read now unless given as ``grads``)."""
        if grads is None:
            grads = [self._params[i].grad for i in present]  # type: ignore[misc]
        return [(id(g), g._version) if g is not None else (0, -1) for g in grads]

    def note(self, present: list[int], norms: Tensor, grads: Sequence[Tensor] | None = None) -> None:
        """The norms of the gradients of ``present`` now (``grads``: their ``.grad``, if just read), before
        anything else touches them."""
        self.measured = Measured(present, norms, self._stamps(present, grads))

    def mark_clipped(self) -> bool:
        """A clip function was called; False when there is no measurement to mark."""
        if self.measured is None:
            return False
        self.measured.clipped = True
        return True

    def lookup(self, present: list[int], grads: Sequence[Tensor] | None = None) -> tuple[Tensor, bool] | None:
        """(norms of ``present`` measured at the end of backward, whether the gradients changed since), or None
        when they were not all measured there."""
        m = self.measured
        if m is None:
            return None
        now = self._stamps(present, grads)
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
        self._hot = {}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self.reset()

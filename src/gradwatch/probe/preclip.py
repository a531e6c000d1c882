"""The gradient before the loop's clipping, whoever clips it (``grad_norm_preclip``).

A watch with optimizers reads its statistics in their step pre-hooks, so ``grad_norm`` is what the optimizer steps
on: after any clipping. What the model itself produced is measured where it is complete and not yet touched, when
a backward call returns, and kept when the loop then changed the gradients:

* ``torch.autograd.backward`` (which ``loss.backward()`` calls) is wrapped while a watch is open
  (:mod:`gradwatch.probe.patches`). When it returns, DDP's all-reduce and FSDP's reduce-scatter, queued inside the
  pass, are done: every ``.grad`` is final. A watch whose gradients that call changed (:meth:`PreClip.snapshot`,
  :meth:`PreClip.reached`: one identity and version read per parameter, no tensor operation) measures the
  per-parameter norms (one fused reduction, kept on the device) and stamps each gradient (identity and version
  counter). One trigger per backward call, not one hook per parameter. With gradient accumulation the last
  micro-batch's measurement stands: the accumulated gradient.
* ``GradScaler.unscale_`` measures again (seen through :mod:`gradwatch.probe.patches`): the unscaled values.
* At the optimizer's step the stamps are compared. Unchanged: nothing touched the gradients, these norms *are*
  the step's ``grad_norm`` (so the default path still computes them once) and there is no pre-clip value.
  Changed — an in-place clip (``torch.nn.utils.clip_grad_norm_``, ``clip_grads_with_norm_``, accelerate's,
  Lightning's, a hand-written ``p.grad.mul_``) or a ``p.grad`` replaced — and these norms are the step's
  ``grad_norm_preclip``. A call of ``clip_grad_norm_`` marks them changed as well.

Limits: a change made through ``p.grad.data`` does not move the version counter (call ``clip_grad_norm_`` or
``Watcher.record_preclip()``); a backward run without ``torch.autograd.backward`` (the engine called directly, or
a ``backward`` imported by name before the watch opened) is not seen — there the wrapped ``clip_grad_norm_``
records the pre-clip values, and a loop that clips otherwise records ``grad_norm`` only.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

# read in C for every parameter (the watcher uses them too)
VERSION, GRAD = operator.attrgetter("_version"), operator.attrgetter("grad")
IS_NONE = functools.partial(operator.is_, None)


@dataclass
class Measured:
    """The norms measured at the end of the last backward pass (or after unscaling)."""

    present: list[int]  # watched-parameter indices that had a gradient
    norms: Tensor  # [len(present)] ‖g‖₂ per parameter, on the device
    stamps: tuple[list[int], list[int]]  # (ids, versions) of the gradients then
    found: Any = None  # what the watch read with them (kept for the step when nothing touched them since)
    clipped: bool = False  # clip_grad_norm_ was called since


class PreClip:
    """What was measured when a backward call that reached ``params`` returned (:meth:`note`), kept until the step
    asks for it (:meth:`lookup`)."""

    def __init__(self, params: Sequence[Tensor]):
        self._params = list(params)
        self.measured: Measured | None = None
        self.measuring = False  # the watch sets it for the backward passes it measures

    # ---- the end of a backward call --------------------------------------------------------------------------
    def snapshot(self) -> tuple[list[Tensor | None], list[int] | None] | None:
        """Before a backward call: each ``.grad`` and its version (None when this backward is not measured; versions
        None when every ``.grad`` is None, as after ``zero_grad()``)."""
        if not self.measuring:
            return None
        grads = list(map(GRAD, self._params))
        if all(map(IS_NONE, grads)):
            return grads, None
        if not any(map(IS_NONE, grads)):
            return grads, list(map(VERSION, grads))
        return grads, [-1 if g is None else g._version for g in grads]

    def reached(self, snapshot: tuple[list[Tensor | None], list[int] | None]) -> bool:
        """After the call: whether it changed some ``.grad`` (a new tensor, or one added to in place)."""
        grads, versions = snapshot
        if versions is None:  # all None before: reached when one is not now
            return not all(map(IS_NONE, map(GRAD, self._params)))
        for p, g, version in zip(self._params, grads, versions):
            now = p.grad
            if now is not g or (now is not None and now._version != version):
                return True
        return False

    # ---- what was measured -----------------------------------------------------------------------------------
    @staticmethod
    def _stamps(grads: Sequence[Tensor]) -> tuple[list[int], list[int]]:
        """(identities, versions) of the gradients: what changes when the loop touches or replaces one."""
        return list(map(id, grads)), list(map(VERSION, grads))

    def note(self, present: list[int], norms: Tensor, grads: Sequence[Tensor], found: Any = None) -> None:
        """The norms of the gradients ``grads`` (the ``.grad`` of ``present``, just read) now, before anything else
        touches them; ``found``: what the watch read with them, handed back by :meth:`untouched`."""
        self.measured = Measured(present, norms, self._stamps(grads), found)

    def untouched(self, indices: list[int]) -> Measured | None:
        """The measurement, when it covers exactly the parameters ``indices`` and each of their ``.grad`` is still
        the very tensor measured, unchanged (nothing clipped, replaced or added since): then it *is* the step's."""
        m = self.measured
        if m is None or m.clipped or m.present != indices:
            return None
        params = self._params
        grads = list(map(GRAD, params)) if len(indices) == len(params) else [params[i].grad for i in indices]
        if list(map(id, grads)) != m.stamps[0] or list(map(VERSION, grads)) != m.stamps[1]:
            return None  # (ids first: a gradient now None has another id, so its version is never read)
        return m

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
        then = ([m.stamps[0][j] for j in positions], [m.stamps[1][j] for j in positions])
        return norms, m.clipped or then != now

    def reset(self) -> None:
        """The step is over: the next one starts with nothing measured."""
        self.measured = None

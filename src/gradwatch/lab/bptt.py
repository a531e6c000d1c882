"""Back-propagation through time for :class:`~gradwatch.lab.recurrent.RecurrentNet` (seed 002): full BPTT
(optionally with Pascanu et al.'s regulariser Ω) or truncated BPTT(k1, k2), recording ‖∂L/∂h_t‖ of the first
recurrent layer for every time step t — the picture of the gradient fading backwards in time.

Truncated BPTT follows Williams & Peng (1990): every k1 steps, the losses of those k1 steps are back-propagated
through the last k2 steps only (the state k2 steps back is treated as a constant). The gradients of all blocks
of a batch are accumulated into one optimizer step. ‖∂L/∂h_t‖ is the Frobenius norm over the batch of the
gradient of the batch's mean loss with respect to h_t (summed over blocks for truncated BPTT).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gradwatch.lab.penalties import pascanu_regularizer, weight_penalty
from gradwatch.lab.prepare import task_loss
from gradwatch.lab.recurrent import RecurrentNet, detach_states


@dataclass
class BackwardResult:
    per_example: Tensor  # [B] task loss per example (detached)
    time_grads: Tensor | None  # [T] ‖∂L/∂h_t‖ of the first layer, when recorded

    @property
    def loss(self) -> float:
        return float(self.per_example.mean())


def recurrent_backward(
    model: RecurrentNet,
    x: Tensor,
    y: Tensor,
    *,
    loss: str = "mse",
    tbptt: list[int] | tuple[int, int] | None = None,
    pascanu: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    record: bool = False,
) -> BackwardResult:
    """Forward and backward of one batch ``x`` [B, T, n_in]; gradients accumulate in the parameters' ``.grad``."""
    steps = x.shape[1]
    grads: list[Tensor | None] = [None] * steps

    def hook(t: int, h: Tensor) -> None:
        if record and h.requires_grad and pascanu == 0:

            def add(g: Tensor, t: int = t) -> None:
                before = grads[t]
                grads[t] = g.detach() if before is None else before + g.detach()

            h.register_hook(add)

    initial = model.initial_state(x.shape[0], x)
    if tbptt is None:
        un = model.unroll(x, initial, on_first=hook)
        per = task_loss(model.head(un.top), y, loss, reduction="none")
        mean = per.mean()
        total = mean + weight_penalty(model, l1, l2)
        if pascanu > 0:
            h0 = initial[0][0] if isinstance(initial[0], tuple) else initial[0]
            omega, g = pascanu_regularizer(model.cells[0], x, [h0] + un.first, mean)
            total = total + pascanu * omega
            grads = list(g.unbind(1))
        total.backward()
        per = per.detach()
    else:
        per = _truncated(model, x, y, initial, hook, loss, tbptt)
        penalty = weight_penalty(model, l1, l2)
        if isinstance(penalty, Tensor):
            penalty.backward()
    times = None
    if record:
        times = torch.stack(
            [torch.zeros((), device=x.device) if g is None else torch.linalg.vector_norm(g) for g in grads]
        )
    return BackwardResult(per, times)


def _truncated(
    model: RecurrentNet, x: Tensor, y: Tensor, initial: list, hook, loss: str, tbptt: list[int] | tuple[int, int]
) -> Tensor:
    k1, k2 = tbptt
    steps = x.shape[1]
    with torch.no_grad():  # the state before every step, without a graph
        states_at = [initial]
        for t in range(steps):
            states_at.append(model.unroll(x, states_at[-1], t, t + 1).states)
    per_total = torch.zeros(x.shape[0], device=x.device)
    prev = 0
    for end in list(range(k1, steps, k1)) + [steps]:
        if model.per_step or end == steps:  # a many-to-one net has a loss in the last block only
            start = max(0, end - k2)
            un = model.unroll(x, detach_states(states_at[start]), start, end, on_first=hook)
            if model.per_step:
                out = model.output(torch.stack(un.top[prev - start :], 1))  # steps prev … end−1: [B, end−prev, C]
                per = task_loss(out, y[:, prev:end], loss, "none") * ((end - prev) / steps)
            else:
                per = task_loss(model.output(un.top[-1]), y, loss, "none")
            per.mean().backward()
            per_total += per.detach()
        prev = end
    return per_total

"""Penalties added to the loss: L1 / L2 on the weights (seed 001) and Pascanu et al. 2013's regulariser.

Pascanu, Mikolov & Bengio (2013), eq. (9): Ω = Σ_k (‖∂E/∂x_{k+1} · ∂x_{k+1}/∂x_k‖ / ‖∂E/∂x_{k+1}‖ − 1)²,
which pushes the back-propagated error to keep its norm from one step to the previous one. ∂E/∂x_{k+1} is held
constant (as in the paper); the one-step Jacobian-vector products are computed for all k at once by running the
cell on the stored states.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gradwatch.lab.constraints import constrained_weights

PASCANU_EPS = 1e-12  # steps whose ‖∂E/∂x_{k+1}‖ is below this are left out of Ω


def weight_penalty(model: nn.Module, l1: float = 0.0, l2: float = 0.0) -> Tensor | float:
    """λ₁ Σ|w| + λ₂/2 Σ w² over the weight matrices (seed 001's R_L1 and R_L2); 0.0 when both are off."""
    if l1 == 0 and l2 == 0:
        return 0.0
    ws = constrained_weights(model)
    total = torch.zeros((), device=ws[0].device) if ws else torch.zeros(())
    if l1:
        total = total + l1 * sum(w.abs().sum() for w in ws)
    if l2:
        total = total + 0.5 * l2 * sum((w * w).sum() for w in ws)
    return total


def pascanu_regularizer(
    cell: nn.Module, inputs: Tensor, states: Sequence[Tensor], loss: Tensor
) -> tuple[Tensor, Tensor]:
    """Ω for one recurrent layer whose state is a single tensor (RNN, GRU).

    Args:
        cell: ``cell(x_t, h_{t−1}) → h_t``.
        inputs: the layer's inputs [B, T, n_in].
        states: h_0 … h_T ([B, H] each; h_0 the initial state), part of ``loss``'s graph.
        loss: the task loss E.
    Returns:
        Ω summed over steps and averaged over the batch (a differentiable 0-d tensor), and ∂E/∂h_t for
        t = 1 … T ([B, T, H], detached).
    """
    grads = torch.autograd.grad(loss, list(states[1:]), retain_graph=True, allow_unused=True)
    g = torch.stack([torch.zeros_like(s) if d is None else d for s, d in zip(states[1:], grads)], 1)  # [B, T, H]
    g = g.detach()
    prev = torch.stack(list(states[:-1]), 1).detach().requires_grad_(True)  # h_0 … h_{T−1}: [B, T, H]
    b, t, h = prev.shape
    nxt = cell(inputs.reshape(b * t, -1), prev.reshape(b * t, h)).reshape(b, t, h)
    (vjp,) = torch.autograd.grad(nxt, prev, grad_outputs=g, create_graph=True)  # g_{k+1}ᵀ ∂x_{k+1}/∂x_k
    g_norm = g.norm(dim=-1)
    ok = g_norm > PASCANU_EPS
    ratio = vjp.norm(dim=-1)[ok] / g_norm[ok]
    return ((ratio - 1) ** 2).sum() / b, g

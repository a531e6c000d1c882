"""Gradient clipping and weight constraints, measure-then-modify as ``torch/nn/utils/clip_grad.py`` does.

- :func:`grad_norm` measures the global L2 norm of the gradients; :func:`clip_gradients` clips by norm
  (Pascanu et al. 2013: if ‖g‖ ≥ c then g ← c·g/‖g‖) and/or by value (g ← clamp(g, −c, c)) and returns the
  norm measured *before* clipping, so it is logged for free.
- :func:`project_weights` is the projection applied after each step (seed 003): every weight matrix onto
  {‖W‖₂ ≤ c} (singular values clipped at c — the nearest such matrix in Frobenius norm) and/or onto
  {|w_ij| ≤ c}. With 1-Lipschitz σ and ‖W_j‖₂ ≤ 1, ‖δ_j‖ ≤ ‖δ_{j+1}‖: the backward pass cannot explode.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def grad_norm(params: Iterable[nn.Parameter]) -> Tensor:
    """‖g‖₂ over all gradients (a 0-d tensor, no host sync)."""
    return _global_norm([p.grad for p in params if p.grad is not None])


def _global_norm(grads: list[Tensor]) -> Tensor:
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


@torch.no_grad()
def clip_gradients(
    params: Iterable[nn.Parameter], max_norm: float | None = None, max_value: float | None = None
) -> Tensor:
    """Clip gradients in place by value then by global norm; returns the pre-clip global norm."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = _global_norm(grads)
    if max_value is not None:
        for g in grads:
            g.clamp_(-max_value, max_value)
    if max_norm is not None:
        total = norm if max_value is None else _global_norm(grads)
        factor = torch.clamp(max_norm / (total + 1e-12), max=1.0)
        torch._foreach_mul_(grads, factor)
    return norm


def constrained_weights(model: nn.Module) -> list[Tensor]:
    """The matrices the constraints apply to: weights of linear layers and recurrent cells (not biases, not
    norm scales); conv kernels are viewed as [out, in·k·k]."""
    out: list[Tensor] = []
    for name, p in model.named_parameters():
        if p.dim() >= 2 and name.rsplit(".", 1)[-1].startswith("weight"):
            out.append(p)
    return out


@torch.no_grad()
def project_spectral(w: Tensor, max_norm: float) -> Tensor:
    """W ← U min(S, c) Vᵀ in place (only when ‖W‖₂ > c)."""
    mat = w.reshape(w.shape[0], -1)
    u, s, vh = torch.linalg.svd(mat.double(), full_matrices=False)
    if s[0] > max_norm:
        w.copy_(((u * s.clamp(max=max_norm)) @ vh).reshape(w.shape).to(w.dtype))
    return w


@torch.no_grad()
def project_weights(
    model: nn.Module, max_spectral_norm: float | None = None, max_abs_weight: float | None = None
) -> None:
    """Apply the weight constraints of seed 003 to every weight matrix of ``model``."""
    if max_spectral_norm is None and max_abs_weight is None:
        return
    for w in constrained_weights(model):
        if max_abs_weight is not None:
            w.clamp_(-max_abs_weight, max_abs_weight)
        if max_spectral_norm is not None:
            project_spectral(w, max_spectral_norm)

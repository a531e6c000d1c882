"""Batch-norm folding (seed 001): at inference BN is an affine map, so it can be merged into the linear layer
before it:

    y = γ (Wx + b − μ)/√(σ² + ε) + β  =  W' x + b',   W' = s·W, b' = s·(b − μ) + β, s = γ/√(σ² + ε)

with μ, σ² the running statistics. :func:`fold_batchnorm` returns a copy of the model where every
``Linear → BatchNorm1d`` pair inside a ``nn.Sequential`` is replaced by the folded ``Linear`` (and an
``Identity`` in place of the BN); its eval-mode output equals the original's.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gradwatch.errors import ConfigError


@torch.no_grad()
def fold_linear_bn(linear: nn.Linear, bn: nn.BatchNorm1d) -> nn.Linear:
    """One folded ``nn.Linear`` equal to ``bn(linear(x))`` in eval mode."""
    mean, var = bn.running_mean, bn.running_var
    if mean is None or var is None:
        raise ConfigError(
            "bn.track_running_stats", bn.track_running_stats, "folding needs the BatchNorm's running mean and variance"
        )
    s = bn.weight / torch.sqrt(var + bn.eps) if bn.affine else 1.0 / torch.sqrt(var + bn.eps)
    shift = bn.bias if bn.affine else torch.zeros_like(mean)
    bias = linear.bias if linear.bias is not None else torch.zeros_like(mean)
    folded = nn.Linear(linear.in_features, linear.out_features, bias=True).to(linear.weight)
    folded.weight.copy_(linear.weight * s[:, None])
    folded.bias.copy_(s * (bias - mean) + shift)
    return folded


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every ``Linear → BatchNorm1d`` pair folded into the Linear.

    BN placed after the activation is left as it is (there is no linear layer right before it).
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "expected a torch.nn.Module")
    folded = copy.deepcopy(model).eval()
    for seq in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names[:-1], names[1:]):
            lin, bn = seq._modules[a], seq._modules[b]
            if type(lin) is nn.Linear and isinstance(bn, nn.BatchNorm1d) and bn.track_running_stats:
                seq._modules[a] = fold_linear_bn(lin, bn)
                seq._modules[b] = nn.Identity()
    return folded

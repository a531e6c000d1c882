"""Building blocks of the lab's feed-forward nets that ``torch.nn`` does not have as such.

- :class:`ScaledAtTestDropout`: seed 001's dropout — zero a unit with probability p in training, multiply by the
  keep probability 1 − p at test time (PyTorch's ``nn.Dropout`` instead scales by 1/(1 − p) in training).
- :class:`SparseLinear`: seed 003's "fixed (random) sparsity pattern" affine map.
- :class:`Residual`: seed 003's z_{j+1} = z_j + σ(W_j z_j + b_j), a projection on the skip path when widths
  differ, and stochastic depth (the branch dropped with probability ρ).
- :func:`conv_front`: a small conv + average-pooling front end for image data (seed 003's conv and
  subsampling affine maps).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ScaledAtTestDropout(nn.Module):
    """Dropout as in seed 001 (Srivastava et al.'s original): y = m ⊙ x, m ~ Bernoulli(1 − p) in training;
    y = (1 − p) x at test time. Same expected output as inverted dropout's, scaled at the other end."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x * (1.0 - self.p)
        if self.p == 0:
            return x
        mask = torch.empty_like(x).bernoulli_(1.0 - self.p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SparseLinear(nn.Linear):
    """``nn.Linear`` whose weight is multiplied by a fixed random 0/1 mask (density = share of ones).

    The mask is a buffer, so masked weights get zero gradient and stay zero in the output; the mask is drawn
    from ``generator`` so the pattern is reproducible.
    """

    mask: Tensor  # buffer [n_out, n_in]

    def __init__(self, n_in: int, n_out: int, density: float, generator: torch.Generator | None = None):
        super().__init__(n_in, n_out)
        mask = (torch.rand(n_out, n_in, generator=generator) < density).float()
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", density={float(self.mask.mean()):.3g}"


class Residual(nn.Module):
    """z ↦ skip(z) + branch(z), skip = identity or a bias-free linear projection when widths differ.

    Stochastic depth (Huang et al. 2016, seed 003): in training the branch is dropped for the whole batch with
    probability ``layer_drop``; at test time it is scaled by its survival probability 1 − layer_drop.
    """

    def __init__(self, branch: nn.Module, n_in: int, n_out: int, layer_drop: float = 0.0):
        super().__init__()
        self.branch = branch
        self.proj = nn.Linear(n_in, n_out, bias=False) if n_in != n_out else None
        self.layer_drop = layer_drop

    def forward(self, z: Tensor) -> Tensor:
        skip = z if self.proj is None else self.proj(z)
        if self.layer_drop == 0:
            return skip + self.branch(z)
        if self.training:
            if torch.rand(()) < self.layer_drop:
                return skip
            return skip + self.branch(z)
        return skip + (1.0 - self.layer_drop) * self.branch(z)


class Unflatten(nn.Module):
    """[n, h·w] → [n, 1, h, w], so a conv front end can follow flattened image data."""

    def __init__(self, shape: tuple[int, int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], 1, *self.shape)


def conv_front(image_shape: tuple[int, int], channels: int, activation: nn.Module) -> tuple[nn.Sequential, int]:
    """Conv 3×3 (same padding) → activation → 2×2 average pooling → flatten; returns the module and its width."""
    h, w = image_shape
    front = nn.Sequential()
    front.add_module("unflatten", Unflatten((h, w)))
    front.add_module("conv", nn.Conv2d(1, channels, kernel_size=3, padding=1))
    front.add_module("act", activation)
    front.add_module("pool", nn.AvgPool2d(2))
    front.add_module("flatten", nn.Flatten())
    return front, channels * (h // 2) * (w // 2)

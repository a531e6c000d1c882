"""Gaussian expectations ∫Dz f(z), Dz = e^{−z²/2} dz/√(2π), by Gaussian quadrature.

ReLU-like activations have a kink at 0, where Gauss–Hermite quadrature loses its fast convergence. So the real line
is cut at the kink into [−L, 0] and [0, L] (L = :data:`CUTOFF`; the Gaussian mass beyond is < 1e−22) and each piece
gets its own Gauss–Legendre rule; on each piece every activation here is smooth, so the rule converges exponentially
for all of them. The line is also cut where h = √q z crosses the other kinks of the registered activations (±1, ±3,
±6: hardtanh, hardsigmoid, hardswish, relu6) and at |h| = 30, 300, 3000, 30000, where saturating activations (tanh,
sigmoid) have flattened and slowly decaying ones (softsign's 1/(1 + |h|)²) keep decaying: a large variance squeezes
all of them into |z| ≲ 1/√q, and q = 1e10 is integrated as accurately as q = 1. The density itself is cut at |z| = 1
and 3, so that each piece is smooth on the scale of its nodes. In two dimensions the inner integral is cut at the
same h of its second argument. The tests check these rules against Gauss–Hermite (numpy.polynomial.hermite_e) for
smooth functions and against closed forms (ReLU's arc-cosine kernel) for kinked ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.polynomial.legendre import leggauss

CUTOFF = 10.0  # integrate z over [−CUTOFF, CUTOFF]
NODES = 24  # Gauss–Legendre nodes per piece
H_CUTS = (1.0, 3.0, 6.0, 30.0, 300.0, 3000.0, 30000.0)  # |h| where the line is also cut (see above)
Z_CUTS = (1.0, 3.0)  # |z| where it is cut for the Gaussian density itself: 24 nodes per piece reach 1e−16

Fn = Callable[[np.ndarray], np.ndarray]


def _density(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


@lru_cache(maxsize=8)
def split_rule(nodes: int = NODES, cutoff: float = CUTOFF) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w with Σ w f(z) ≈ ∫Dz f(z), the rule cut at z = 0."""
    t, wt = leggauss(nodes)
    half = 0.5 * cutoff
    z = np.concatenate([half * (t - 1), half * (t + 1)])  # [−L, 0] then [0, L]
    w = np.concatenate([half * wt, half * wt]) * _density(z)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


@lru_cache(maxsize=8)
def _legendre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    return leggauss(nodes)


def _pieces(center: np.ndarray, scale: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes z and weights (of dz, the density not applied) on [−L, L] cut at ``center`` and at
    ``center ± h·scale`` for every h in :data:`H_CUTS` (clipped to [−L, L]; pieces clipped away get zero
    weight): shapes ``center.shape + (pieces·nodes,)``."""
    t, wt = _legendre(nodes)
    c = np.clip(center, -CUTOFF, CUTOFF)[..., None]
    offsets = np.multiply.outer(scale, np.asarray(H_CUTS))  # [..., cuts]
    offsets = np.sort(
        np.concatenate([offsets, np.broadcast_to(Z_CUTS, (*offsets.shape[:-1], len(Z_CUTS)))], axis=-1), axis=-1
    )  # the density's own scale too
    with np.errstate(invalid="ignore"):
        edges = np.concatenate(
            [
                np.full_like(c, -CUTOFF),
                np.clip(c - offsets[..., ::-1], -CUTOFF, CUTOFF),
                c,
                np.clip(c + offsets, -CUTOFF, CUTOFF),
                np.full_like(c, CUTOFF),
            ],
            axis=-1,
        )
    a, b = edges[..., :-1, None], edges[..., 1:, None]  # [..., pieces, 1]
    z = 0.5 * (b - a) * t + 0.5 * (a + b)  # [..., pieces, nodes]
    w = 0.5 * (b - a) * wt
    return z.reshape(*c.shape[:-1], -1), w.reshape(*c.shape[:-1], -1)


def _scale(q: np.ndarray) -> np.ndarray:
    """1/√q: the z that h = √q z maps to h = 1 (inf at q = 0)."""
    with np.errstate(divide="ignore"):
        return 1.0 / np.sqrt(q)


def expect(f: Fn, q: float | np.ndarray, nodes: int = NODES) -> float | np.ndarray:
    """E f(h) for h ~ N(0, q), i.e. ∫Dz f(√q z); ``q`` may be an array (one expectation per entry). The rule is
    cut at z = 0 and at z = ±h/√q for every h in :data:`H_CUTS`."""
    q = np.asarray(q, dtype=float)
    z, w = _pieces(np.zeros_like(q), _scale(q), nodes)  # [..., pieces·nodes]
    return (f(np.sqrt(q)[..., None] * z) * (w * _density(z))).sum(axis=-1)


def expect_pair(f: Fn, g: Fn, q: float, c: float, nodes: int = NODES) -> float:
    """E f(u_1) g(u_2) for a centred Gaussian pair with variances q, q and correlation c:
    u_1 = √q z_1, u_2 = √q (c z_1 + √(1 − c²) z_2) with independent standard z_1, z_2. The inner integral is cut
    where u_2 = 0 and where |u_2| is one of :data:`H_CUTS`; the outer one as in :func:`expect`."""
    s = math.sqrt(max(0.0, 1.0 - c * c))
    root_q = math.sqrt(q)
    z1, w1 = _pieces(np.zeros(()), _scale(np.asarray(q, dtype=float)), nodes)  # [n1]
    w1 = w1 * _density(z1)
    if s < 1e-12:  # u_2 = ±u_1
        return float((f(root_q * z1) * g(root_q * c * z1)) @ w1)
    kink = -c * z1 / s  # where u_2 = 0, for each z_1   (n1,)
    z2, w2 = _pieces(kink, np.full_like(kink, float(_scale(np.asarray(q * s * s)))), nodes)  # (n1, n2)
    inner = (g(root_q * (c * z1[:, None] + s * z2)) * w2 * _density(z2)).sum(axis=1)  # (n1,)
    return float((f(root_q * z1) * inner) @ w1)

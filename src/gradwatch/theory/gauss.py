"""Gaussian expectations ∫Dz f(z), Dz = e^{−z²/2} dz/√(2π), by Gaussian quadrature.

ReLU-like activations have a kink at 0, where Gauss–Hermite quadrature loses its fast convergence. So the
real line is cut at the kink into [−L, 0] and [0, L] (L = :data:`CUTOFF`; the Gaussian mass beyond is
< 1e−22) and each piece gets its own Gauss–Legendre rule; on each piece every activation here is smooth, so the
rule converges exponentially for all of them. In two dimensions the inner integral is cut where its second
argument crosses 0. The tests check these rules against Gauss–Hermite (numpy.polynomial.hermite_e) for smooth
functions and against closed forms (ReLU's arc-cosine kernel) for kinked ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.polynomial.legendre import leggauss

CUTOFF = 10.0  # integrate z over [−CUTOFF, CUTOFF]
NODES = 64     # Gauss–Legendre nodes per piece

Fn = Callable[[np.ndarray], np.ndarray]


def _density(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


@lru_cache(maxsize=8)
def split_rule(nodes: int = NODES, cutoff: float = CUTOFF) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w with Σ w f(z) ≈ ∫Dz f(z), the rule cut at z = 0."""
    t, wt = leggauss(nodes)
    half = 0.5 * cutoff
    z = np.concatenate([half * (t - 1), half * (t + 1)])            # [−L, 0] then [0, L]
    w = np.concatenate([half * wt, half * wt]) * _density(z)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def expect(f: Fn, q: float | np.ndarray, nodes: int = NODES) -> float | np.ndarray:
    """E f(h) for h ~ N(0, q), i.e. ∫Dz f(√q z); ``q`` may be an array (one expectation per entry)."""
    z, w = split_rule(nodes)
    q = np.asarray(q, dtype=float)
    return f(np.sqrt(q)[..., None] * z) @ w


def expect_pair(f: Fn, g: Fn, q: float, c: float, nodes: int = NODES) -> float:
    """E f(u_1) g(u_2) for a centred Gaussian pair with variances q, q and correlation c:
    u_1 = √q z_1, u_2 = √q (c z_1 + √(1 − c²) z_2) with independent standard z_1, z_2."""
    z1, w1 = split_rule(nodes)
    s = math.sqrt(max(0.0, 1.0 - c * c))
    root_q = math.sqrt(q)
    if s < 1e-12:  # u_2 = ±u_1
        return float((f(root_q * z1) * g(root_q * c * z1)) @ w1)
    t, wt = leggauss(nodes)
    kink = np.clip(-c * z1 / s, -CUTOFF, CUTOFF)[:, None]          # where u_2 = 0, for each z_1   (n1, 1)
    lo_half, hi_half = 0.5 * (kink + CUTOFF), 0.5 * (CUTOFF - kink)
    z2 = np.concatenate([lo_half * t + (kink - lo_half), hi_half * t + (kink + hi_half)], axis=1)  # (n1, 2n)
    w2 = np.concatenate([lo_half * wt, hi_half * wt], axis=1) * _density(z2)                        # (n1, 2n)
    inner = (g(root_q * (c * z1[:, None] + s * z2)) * w2).sum(axis=1)                              # (n1,)
    return float((f(root_q * z1) * inner) @ w1)

"""Seed 003's losses L(u, y) and their gradients ∂L/∂u (= δ_{n+1}, where the backward pass starts).

``u`` and ``y`` hold one sample per column; the loss is summed over the batch.
"""

from __future__ import annotations

import numpy as np

from gradwatch.errors import ConfigError


def squared_error(u: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Regression: L(u, y) = ½‖u − y‖₂², so ∂L/∂u = u − y."""
    _check_shapes(u, y)
    r = u - y
    return 0.5 * float(np.sum(r * r)), r


def cross_entropy(u: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """K-class classification: L(u, y) = log Σ_j e^{u_j} − yᵀu (y one-hot), so ∂L/∂u = softmax(u) − y."""
    _check_shapes(u, y)
    top = u.max(axis=0, keepdims=True)  # subtract the max so that exp never overflows
    log_sum = top + np.log(np.exp(u - top).sum(axis=0, keepdims=True))  # (1, m)
    loss = float(np.sum(log_sum) - np.sum(y * u))
    return loss, np.exp(u - log_sum) - y


def _check_shapes(u: np.ndarray, y: np.ndarray) -> None:
    if u.shape != y.shape:
        raise ConfigError("y.shape", y.shape, f"must equal the network output's shape {u.shape}")


LOSSES = {"squared_error": squared_error, "cross_entropy": cross_entropy}

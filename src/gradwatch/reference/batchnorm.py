"""Batch normalisation exactly as seed 001 (after Ioffe & Szegedy 2015) writes it.

Each row of ``x`` is one unit (feature); its m columns are the mini-batch B = {x_1 … x_m}.

Forward::

    μ_B  = (1/m) Σ x_i                     σ²_B = (1/m) Σ (x_i − μ_B)²
    x̂_i  = (x_i − μ_B) / √(σ²_B + ε)       y_i  = γ x̂_i + β

Backward (μ_B and σ²_B depend on every x_i, so they are differentiated too)::

    ∂ℓ/∂x̂_i = ∂ℓ/∂y_i · γ
    ∂ℓ/∂σ²_B = Σ ∂ℓ/∂x̂_i · (x_i − μ_B) · (−½)(σ²_B + ε)^{−3/2}
    ∂ℓ/∂μ_B  = (Σ ∂ℓ/∂x̂_i · −1/√(σ²_B + ε)) + ∂ℓ/∂σ²_B · Σ −2(x_i − μ_B) / m
    ∂ℓ/∂x_i  = ∂ℓ/∂x̂_i / √(σ²_B + ε) + ∂ℓ/∂σ²_B · 2(x_i − μ_B)/m + ∂ℓ/∂μ_B / m
    ∂ℓ/∂γ    = Σ ∂ℓ/∂y_i · x̂_i               ∂ℓ/∂β = Σ ∂ℓ/∂y_i

Inference uses population statistics kept as running averages E_{i+1} = (1 − α) E_i + α E_B, and is then one
linear map y = γ/√(D[x] + ε) · x + (β − γ E[x]/√(D[x] + ε)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradwatch.errors import ConfigError

DEFAULT_EPS = 1e-5  # as torch.nn.BatchNorm1d


@dataclass(frozen=True)
class BatchNormCache:
    """What the backward pass needs from the forward pass (shapes: x (units, m); the rest (units, 1))."""

    x: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    x_hat: np.ndarray
    gamma: np.ndarray
    eps: float


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = DEFAULT_EPS
) -> tuple[np.ndarray, BatchNormCache]:
    """y = BN_{γ,β}(x) over the batch (columns); returns y and the cache for :func:`batchnorm_backward`."""
    m = x.shape[1]
    if m < 2:
        raise ConfigError("batch_size", m, "batch normalisation needs at least 2 samples per mini-batch")
    gamma, beta = _column(gamma), _column(beta)
    mu = x.sum(axis=1, keepdims=True) / m  # mini-batch mean        (units, 1)
    var = ((x - mu) ** 2).sum(axis=1, keepdims=True) / m  # mini-batch variance    (units, 1)
    x_hat = (x - mu) / np.sqrt(var + eps)  # normalise              (units, m)
    y = gamma * x_hat + beta  # scale and shift        (units, m)
    return y, BatchNormCache(x, mu, var, x_hat, gamma, eps)


def batchnorm_backward(dy: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(∂ℓ/∂x, ∂ℓ/∂γ, ∂ℓ/∂β) from ∂ℓ/∂y, one seed-001 formula per line."""
    x, mu, var, x_hat, gamma, eps = cache.x, cache.mu, cache.var, cache.x_hat, cache.gamma, cache.eps
    m = x.shape[1]
    dx_hat = dy * gamma
    dvar = np.sum(dx_hat * (x - mu), axis=1, keepdims=True) * -0.5 * (var + eps) ** -1.5
    dmu = (
        np.sum(dx_hat * -1.0 / np.sqrt(var + eps), axis=1, keepdims=True)
        + dvar * np.sum(-2.0 * (x - mu), axis=1, keepdims=True) / m
    )
    dx = dx_hat / np.sqrt(var + eps) + dvar * 2.0 * (x - mu) / m + dmu / m
    dgamma = np.sum(dy * x_hat, axis=1)
    dbeta = np.sum(dy, axis=1)
    return dx, dgamma, dbeta


def update_running(
    running_mean: np.ndarray, running_var: np.ndarray, cache: BatchNormCache, alpha: float = 0.1, unbiased: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """E_{i+1} = (1 − α) E_i + α E_B for the mean and the variance.

    ``unbiased`` uses m/(m − 1)·σ²_B for the population variance, as Ioffe & Szegedy's inference step and
    ``torch.nn.BatchNorm1d`` (whose ``momentum`` is this α) do.
    """
    if not 0 < alpha <= 1:
        raise ConfigError("alpha", alpha, "the running-average rate must be in (0, 1]")
    m = cache.x.shape[1]
    var = cache.var[:, 0] * (m / (m - 1) if unbiased else 1.0)
    return (1 - alpha) * running_mean + alpha * cache.mu[:, 0], (1 - alpha) * running_var + alpha * var


def fold_batchnorm(
    gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float = DEFAULT_EPS
) -> tuple[np.ndarray, np.ndarray]:
    """Inference BN as one linear map y = scale·x + shift: scale = γ/√(D+ε), shift = β − γE/√(D+ε)."""
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - scale * mean


def batchnorm_inference(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """BN at test time: x̂ = (x − E[x])/√(D[x] + ε), y = γx̂ + β (with the population statistics)."""
    x_hat = (x - _column(mean)) / np.sqrt(_column(var) + eps)
    return _column(gamma) * x_hat + _column(beta)


def _column(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=float).reshape(-1, 1)

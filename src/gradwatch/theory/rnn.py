"""Seed 002: why gradients vanish or explode through time in a recurrent network.

Pascanu, Mikolov & Bengio (2013), with x_t = W_rec σ(x_{t−1}) + W_in u_t + b:

    ∂x_t/∂x_k = Π_{t ≥ i > k} ∂x_i/∂x_{i−1} = Π_{t ≥ i > k} W_rec diag(σ'(x_{i−1}))

(the paper writes W_recᵀ in its row-vector convention). Hochreiter (1991) bounds its norm by

    ‖∂x_t/∂x_{t−q}‖ ≤ (‖W_rec‖ · max|σ'|)^q

so with λ₁ = ‖W_rec‖₂ and γ = max|σ'|: λ₁ < 1/γ is *sufficient* for vanishing, λ₁ > 1/γ is *necessary* for
exploding (γ = 1 for tanh, 1/4 for the sigmoid).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import get_activation, numpy_activation


@dataclass(frozen=True)
class RNNBounds:
    activation: str
    spectral_norm: float  # λ₁ = ‖W_rec‖₂
    max_derivative: float  # γ = max|σ'|
    regime: str  # "vanishing" (λ₁ < 1/γ: guaranteed) or "may explode" (λ₁ ≥ 1/γ)
    bound: list[float]  # (λ₁γ)^q for lags q = 1 … Q
    actual: list[float] | None  # ‖∂x_T/∂x_{T−q}‖₂ along the given trajectory, q = 1 … Q

    def to_dict(self) -> dict:
        return asdict(self)


def _square(W_rec) -> np.ndarray:
    W = np.asarray(W_rec, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.size == 0:
        raise ConfigError("W_rec", getattr(W, "shape", W_rec), "expected a non-empty square matrix")
    if not np.all(np.isfinite(W)):
        raise ConfigError("W_rec", "non-finite entries", "every weight must be finite")
    return W


def rnn_trajectory(
    W_rec, x0, inputs=None, W_in=None, b=None, activation: str = "tanh", steps: int | None = None
) -> np.ndarray:
    """States x_0 … x_T of x_t = W_rec σ(x_{t−1}) + W_in u_t + b; shape ``(T + 1, n)``.

    ``inputs`` is ``(T, m)`` (with ``W_in`` of shape ``(n, m)``); without inputs, ``steps`` gives T.
    """
    W = _square(W_rec)
    n = W.shape[0]
    act = numpy_activation(activation)
    x = np.asarray(x0, dtype=float).reshape(n)
    if inputs is None:
        if steps is None or steps < 1:
            raise ConfigError("steps", steps, "give the inputs u_1 … u_T or a number of steps ≥ 1")
        drive = np.zeros((steps, n))
    else:
        u = np.asarray(inputs, dtype=float)
        drive = u @ np.asarray(W_in, dtype=float).T  # W_in u_t for every t   (T, n)
    drive = drive + (0.0 if b is None else np.asarray(b, dtype=float))
    states = [x]
    for t in range(drive.shape[0]):
        states.append(W @ act.fn(states[-1]) + drive[t])
    return np.stack(states)


def rnn_bounds(W_rec, activation: str = "tanh", states=None, lags: int = 20) -> RNNBounds:
    """Hochreiter's bound (λ₁γ)^q for q = 1 … lags and, given ``states`` x_0 … x_T, the actual norms
    ‖∂x_T/∂x_{T−q}‖₂ (then ``lags`` is at most T)."""
    W = _square(W_rec)
    act, np_act = get_activation(activation), numpy_activation(activation)
    lam, gamma = float(np.linalg.norm(W, 2)), act.max_derivative()
    actual = None
    if states is not None:
        x = np.asarray(states, dtype=float)
        if x.ndim != 2 or x.shape[1] != W.shape[0] or len(x) < 2:
            raise ConfigError("states", x.shape, f"expected (T + 1, {W.shape[0]}) states with T ≥ 1")
        lags = min(lags, len(x) - 1)
        J, actual = np.eye(W.shape[0]), []
        for q in range(1, lags + 1):
            i = len(x) - q  # ∂x_i/∂x_{i−1} = W diag(σ'(x_{i−1}))
            J = J @ (W * np_act.deriv(x[i - 1])[None, :])
            actual.append(float(np.linalg.norm(J, 2)))
    if not isinstance(lags, int) or lags < 1:
        raise ConfigError("lags", lags, "expected a positive integer")
    regime = "vanishing" if lam * gamma < 1 else "may explode"
    return RNNBounds(act.name, lam, gamma, regime, [(lam * gamma) ** q for q in range(1, lags + 1)], actual)

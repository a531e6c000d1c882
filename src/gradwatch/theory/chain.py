"""The one-neuron-per-layer network of seeds 000, 001 and 004, differentiated by hand.

Seed 000 (after Nielsen, ch. 5): z_j = w_j a_{j−1} + b_j, a_j = σ(z_j), a_0 = x, and

    ∂C/∂b_1 = σ'(z_1) × w_2 σ'(z_2) × w_3 σ'(z_3) × … × w_L σ'(z_L) × ∂C/∂a_L

so every layer multiplies the gradient by a factor w_j σ'(z_j). Because |σ'| ≤ max σ' (1/4 for the sigmoid),

    |∂C/∂b_j| ≤ |∂C/∂a_L| · (max σ')^{L−j+1} · Π_{k>j} |w_k|        (seed 001: 2·(1/4)^5·w_1…w_5 for ∂E/∂x)

and ∂C/∂w_j = a_{j−1} ∂C/∂b_j, ∂C/∂x = w_1 ∂C/∂b_1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import get_activation, numpy_activation


@dataclass(frozen=True)
class ChainResult:
    """Every quantity of the scalar chain, layer j = 1 … L at index j − 1."""

    activation: str
    x: float
    weights: list[float]
    biases: list[float]
    z: list[float]  # z_j = w_j a_{j−1} + b_j
    a: list[float]  # a_j = σ(z_j)
    factors: list[float]  # w_j σ'(z_j): what layer j multiplies a gradient by on its way down
    loss_grad: float  # ∂C/∂a_L
    grad_b: list[float]  # ∂C/∂b_j
    grad_w: list[float]  # ∂C/∂w_j = a_{j−1} ∂C/∂b_j
    grad_x: float  # ∂C/∂x = w_1 ∂C/∂b_1
    bound_b: list[float]  # |∂C/∂a_L| (max σ')^{L−j+1} Π_{k>j}|w_k| ≥ |∂C/∂b_j|
    bound_w: list[float]  # |a_{j−1}| · bound_b[j] ≥ |∂C/∂w_j|
    bound_x: float  # |∂C/∂a_L| (max σ')^L Π_k |w_k| ≥ |∂C/∂x| (seed 001's bound)
    max_derivative: float  # max σ'

    @property
    def depth(self) -> int:
        return len(self.weights)

    def to_dict(self) -> dict:
        return asdict(self)


def chain(
    weights: Sequence[float],
    biases: Sequence[float] | None = None,
    x: float = 1.0,
    activation: str = "sigmoid",
    loss_grad: float | Callable[[float], float] = 1.0,
) -> ChainResult:
    """Forward and backward pass of the scalar chain x → σ(w_1 x + b_1) → … → a_L.

    ``loss_grad`` is ∂C/∂a_L: a number, or a function of the output a_L (for seed 001's ½(y − t)² pass
    ``lambda y: y - t``). Biases default to 0.
    """
    w = _finite_list("weights", weights)
    if not w:
        raise ConfigError("weights", list(weights), "expected at least one weight (one per layer)")
    if biases is None:
        b = [0.0] * len(w)
    else:
        b = _finite_list("biases", biases)
        if len(b) != len(w):
            raise ConfigError("biases", list(biases), f"expected {len(w)} biases, one per weight")
    if not math.isfinite(float(x)):
        raise ConfigError("x", x, "must be a finite number")
    act, np_act = get_activation(activation), numpy_activation(activation)
    z, a = [], [float(x)]
    for wj, bj in zip(w, b):
        z.append(wj * a[-1] + bj)
        a.append(float(np_act.fn(z[-1])))
    d = [float(np_act.deriv(zj)) for zj in z]
    dC = float(loss_grad(a[-1]) if callable(loss_grad) else loss_grad)
    if not math.isfinite(dC):
        raise ConfigError("loss_grad", dC, "∂C/∂a_L must be a finite number")
    L, top = len(w), act.max_derivative()
    grad_b = [0.0] * L
    upstream = dC  # ∂C/∂a_j, starting from j = L
    for j in range(L - 1, -1, -1):
        grad_b[j] = d[j] * upstream  # ∂C/∂b_j = σ'(z_j) ∂C/∂a_j
        upstream = w[j] * grad_b[j]  # ∂C/∂a_{j−1} = w_j σ'(z_j) ∂C/∂a_j
    bound_b = [abs(dC) * top ** (L - j) * math.prod(abs(v) for v in w[j + 1 :]) for j in range(L)]
    return ChainResult(
        activation=act.name,
        x=float(x),
        weights=w,
        biases=b,
        z=z,
        a=a[1:],
        factors=[wj * dj for wj, dj in zip(w, d)],
        loss_grad=dC,
        grad_b=grad_b,
        grad_w=[a[j] * grad_b[j] for j in range(L)],
        grad_x=w[0] * grad_b[0],
        bound_b=bound_b,
        bound_w=[abs(a[j]) * bound_b[j] for j in range(L)],
        bound_x=abs(w[0]) * bound_b[0],
        max_derivative=top,
    )


def _finite_list(param: str, values: Sequence[float]) -> list[float]:
    try:
        out = [float(v) for v in np.ravel(np.asarray(values, dtype=float))]
    except (TypeError, ValueError):
        raise ConfigError(param, values, "expected a list of numbers") from None
    if not all(math.isfinite(v) for v in out):
        raise ConfigError(param, out, "every value must be finite")
    return out

"""Seed 001's variance recursions (Glorot & Bengio 2010; He et al. 2015), with the activation's real statistics.

For an MLP ``sizes = [n_0, n_1, …, n_L]`` (hidden layers 1 … L−1 with φ, a linear output layer L) at
initialisation, with s^l = W^l z^{l−1} + b^l, z^0 = x and z^l = φ(s^l):

    forward   q^l   = Var s^l = n_{l−1} Var W^l · E[(z^{l−1})²] + σ_b²,   E[(z^l)²] = ∫Dz φ(√q^l z)²
    backward  Var ∂L/∂s^l = n_{l+1} Var W^{l+1} · E[φ'(s^l)²] · Var ∂L/∂s^{l+1},   E[φ'²] = ∫Dz φ'(√q^l z)²
    weights   Var ∂L/∂W^l_ij = Var ∂L/∂s^l · E[(z^{l−1})²]

Seed 001 takes φ' ≈ 1 (tanh near 0: Xavier) or E[φ'²] = ½, E[φ²] = q/2 (ReLU: He); here the Gaussian
integrals are evaluated at each layer's actual q^l, so saturation of tanh or sigmoid layers is accounted for.
Per example and per entry; the gradient w.r.t. the network output has variance ``output_grad_var``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import numpy_activation
from gradwatch.theory.gauss import expect

# Var W for each initialisation of gradwatch.nn.init, as a function of (fan_in, fan_out, init_std).
WEIGHT_VARIANCE = {
    "normal": lambda i, o, std: std**2,
    "glorot_standard": lambda i, o, std: 1 / (3 * i),  # U[±1/√n_in]
    "xavier_uniform": lambda i, o, std: 2 / (i + o),
    "xavier_normal": lambda i, o, std: 2 / (i + o),
    "he_normal": lambda i, o, std: 2 / i,
    "he_uniform": lambda i, o, std: 2 / i,
    "orthogonal": lambda i, o, std: 1 / max(i, o),  # orthonormal rows or columns
    "spectral": lambda i, o, std: 1 / (math.sqrt(i) + math.sqrt(o)) ** 2,  # ‖G‖₂ ≈ √i + √o (Marchenko–Pastur)
}


def weight_variance(init: str, fan_in: int, fan_out: int, init_std: float = 0.01) -> float:
    """Var W_ij of an (fan_out × fan_in) matrix drawn by ``init``."""
    if init not in WEIGHT_VARIANCE:
        raise ConfigError("init", init, "expected one of " + ", ".join(WEIGHT_VARIANCE))
    if init == "normal" and not (isinstance(init_std, (int, float)) and math.isfinite(init_std) and init_std > 0):
        raise ConfigError("init_std", init_std, "σ of the normal init must be > 0 and finite")
    return WEIGHT_VARIANCE[init](fan_in, fan_out, init_std)


@dataclass(frozen=True)
class VariancePrediction:
    """Per layer (``hidden1`` … ``output``, the names of :func:`gradwatch.nn.mlp.mlp`)."""

    activation: str
    init: str
    layers: list[str]
    neurons: list[int]
    weight_var: list[float]  # Var W^l
    preact_var: list[float]  # q^l = Var s^l (forward)
    input_moment: list[float]  # E[(z^{l−1})²], the layer's input
    deriv_moment: list[float]  # E[φ'(s^l)²] (1 for the linear output layer)
    backward_var: list[float]  # Var ∂L/∂s^l
    weight_grad_var: list[float]  # Var ∂L/∂W^l_ij
    grad_norm: list[float]  # √(n_l n_{l−1} Var ∂L/∂W^l): the expected ‖∂L/∂W^l‖ per example

    @property
    def ratio_to_output(self) -> list[float]:
        """‖∂L/∂W^l‖ / ‖∂L/∂W^L‖: < 1 toward the input means vanishing gradients (NaN when the output layer's
        gradient is 0, e.g. for zero inputs)."""
        last = self.grad_norm[-1]
        return [g / last if last > 0 else math.nan for g in self.grad_norm]

    def to_dict(self) -> dict:
        return asdict(self) | {"ratio_to_output": self.ratio_to_output}


def variance_propagation(
    sizes: list[int],
    activation: str = "tanh",
    init: str = "xavier_uniform",
    *,
    input_var: float = 1.0,
    bias_var: float = 0.0,
    output_grad_var: float = 1.0,
    init_std: float = 0.01,
) -> VariancePrediction:
    """Forward and backward variances of an MLP at initialisation; see the module docstring."""
    if len(sizes) < 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise ConfigError("sizes", sizes, "expected at least two positive integers [inputs, ..., outputs]")
    for name, v in (("input_var", input_var), ("bias_var", bias_var), ("output_grad_var", output_grad_var)):
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(name, v, "a variance must be ≥ 0 and finite")
    if not (isinstance(init_std, (int, float)) and math.isfinite(init_std) and init_std > 0):
        raise ConfigError("init_std", init_std, "σ of the normal init must be > 0 and finite")
    act = numpy_activation(activation)
    L = len(sizes) - 1
    wvar = [weight_variance(init, sizes[l - 1], sizes[l], init_std) for l in range(1, L + 1)]
    q, moment, dmom = [], [], []
    z2 = input_var  # E[(z^0)²] = E[x²]
    for l in range(1, L + 1):
        moment.append(z2)
        q.append(sizes[l - 1] * wvar[l - 1] * z2 + bias_var)
        if l < L:
            z2 = float(expect(lambda h: act.fn(h) ** 2, q[-1]))
            dmom.append(float(expect(lambda h: act.deriv(h) ** 2, q[-1])))
    dmom.append(1.0)  # the output layer is linear
    back = [0.0] * L
    back[L - 1] = output_grad_var
    for l in range(L - 1, 0, -1):  # Python index l − 1 is layer l
        back[l - 1] = sizes[l + 1] * wvar[l] * dmom[l - 1] * back[l]
    wgrad = [b * m for b, m in zip(back, moment)]
    norms = [math.sqrt(sizes[l] * sizes[l - 1] * wgrad[l - 1]) for l in range(1, L + 1)]
    names = [f"hidden{l}" for l in range(1, L)] + ["output"]
    return VariancePrediction(act.name, init, names, list(sizes[1:]), wvar, q, moment, dmom, back, wgrad, norms)

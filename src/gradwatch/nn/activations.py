"""The elementwise activation functions of the seeds, with their derivatives.

Each :class:`Activation` knows how to build its ``torch.nn`` module, evaluate itself and its derivative on a
tensor (the derivative is what the backward pass multiplies by: seed 000's σ'(z), seed 003's σ'_j(v_j)), and the
maximum of |σ'| (1/4 for the sigmoid — the reason gradients vanish). The registry is shared by the lab's models,
the watch's saturation statistic and the theory's closed forms, so the three always agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from gradwatch.errors import ConfigError, check_choice

# SELU constants (Klambauer et al. 2017), as in torch.nn.SELU.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Activation:
    """An elementwise activation σ with its derivative σ'.

    ``alpha`` is the slope parameter of leaky_relu / elu / prelu (ignored by the others).
    """

    name: str
    module: Callable[[float], nn.Module]
    fn: Callable[[Tensor, float], Tensor]
    deriv: Callable[[Tensor, float], Tensor]
    max_deriv: Callable[[float], float]
    default_alpha: float = 0.0
    doc: str = field(default="", compare=False)

    def make(self, alpha: float | None = None) -> nn.Module:
        """A fresh ``nn.Module`` computing this activation."""
        return self.module(self.default_alpha if alpha is None else alpha)

    def __call__(self, x: Tensor, alpha: float | None = None) -> Tensor:
        return self.fn(x, self.default_alpha if alpha is None else alpha)

    def derivative(self, x: Tensor, alpha: float | None = None) -> Tensor:
        """σ'(x), elementwise; at a kink the value PyTorch's autograd uses."""
        return self.deriv(x, self.default_alpha if alpha is None else alpha)

    def max_derivative(self, alpha: float | None = None) -> float:
        """sup |σ'| over the real line."""
        return self.max_deriv(self.default_alpha if alpha is None else alpha)


def _sigmoid_d(x: Tensor, _a: float) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


def _elu(x: Tensor, a: float) -> Tensor:
    return torch.where(x > 0, x, a * torch.expm1(x))


def _elu_d(x: Tensor, a: float) -> Tensor:
    return torch.where(x > 0, torch.ones_like(x), a * torch.exp(x))


def _gelu_d(x: Tensor, _a: float) -> Tensor:
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return cdf + x * pdf


# max of Φ(x) + xφ(x) is at x = √2
_GELU_MAX_DERIV = 0.5 * (1 + math.erf(1.0)) + math.sqrt(2) * math.exp(-1.0) / math.sqrt(2 * math.pi)


def _leaky_d(x: Tensor, a: float) -> Tensor:
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, a))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("sigmoid", lambda a: nn.Sigmoid(), lambda x, a: torch.sigmoid(x), _sigmoid_d,
                   lambda a: 0.25, doc="1/(1+e^-z); σ' ≤ 1/4"),
        Activation("tanh", lambda a: nn.Tanh(), lambda x, a: torch.tanh(x),
                   lambda x, a: 1 - torch.tanh(x) ** 2, lambda a: 1.0, doc="tanh z; σ'(0) = 1"),
        Activation("relu", lambda a: nn.ReLU(), lambda x, a: torch.relu(x),
                   lambda x, a: (x > 0).to(x.dtype), lambda a: 1.0, doc="max(z, 0)"),
        Activation("leaky_relu", lambda a: nn.LeakyReLU(a), lambda x, a: torch.where(x > 0, x, a * x),
                   _leaky_d, lambda a: max(1.0, abs(a)), default_alpha=0.01, doc="max(z, αz)"),
        Activation("prelu", lambda a: nn.PReLU(init=a), lambda x, a: torch.where(x > 0, x, a * x),
                   _leaky_d, lambda a: max(1.0, abs(a)), default_alpha=0.25,
                   doc="max(z, αz) with α learned (He et al. 2015)"),
        Activation("elu", lambda a: nn.ELU(a), _elu, _elu_d, lambda a: max(1.0, abs(a)),
                   default_alpha=1.0, doc="z for z > 0, α(e^z − 1) otherwise"),
        Activation("selu", lambda a: nn.SELU(), lambda x, a: SELU_SCALE * _elu(x, SELU_ALPHA),
                   lambda x, a: SELU_SCALE * _elu_d(x, SELU_ALPHA), lambda a: SELU_SCALE * SELU_ALPHA,
                   doc="λ·elu(z; α) with the self-normalising constants"),
        Activation("softsign", lambda a: nn.Softsign(), lambda x, a: x / (1 + x.abs()),
                   lambda x, a: 1 / (1 + x.abs()) ** 2, lambda a: 1.0, doc="z/(1+|z|)"),
        Activation("gelu", lambda a: nn.GELU(), lambda x, a: torch.nn.functional.gelu(x), _gelu_d,
                   lambda a: _GELU_MAX_DERIV, doc="z·Φ(z)"),
        Activation("linear", lambda a: nn.Identity(), lambda x, a: x, lambda x, a: torch.ones_like(x),
                   lambda a: 1.0, doc="identity"),
    ]
}


def get_activation(name: str, param: str = "activation") -> Activation:
    """Look an activation up by name; a :class:`ConfigError` lists the known names otherwise."""
    if not isinstance(name, str):
        raise ConfigError(param, name, "expected a name, one of " + ", ".join(ACTIVATIONS))
    return ACTIVATIONS[check_choice(param, name, ACTIVATIONS)]


# ---------------------------------------------------------------------------------------------------------------
# NumPy evaluation (float64) with the second derivative, for gradwatch.reference (the slides' equations in NumPy)
# and gradwatch.theory (Gaussian integrals of φ, φ', φ''). Same functions and the same values at kinks as above.
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NumpyActivation:
    """σ, σ' and σ'' of one activation as NumPy functions of an array (``alpha`` already bound).

    σ'' is the ordinary second derivative away from kinks; the Dirac masses of ReLU-like functions at 0 are left
    out (every kinked activation here has σ(0) = 0, so they drop out of the mean-field integral ∫Dz σ''σ).
    """

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    deriv: Callable[[np.ndarray], np.ndarray]
    deriv2: Callable[[np.ndarray], np.ndarray]


def _np_sigmoid(x, a):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1/(1+e^-x)


def _np_elu(x, a):
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0)))


def _np_elu_d(x, a):
    return np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0)))


def _np_elu_d2(x, a):
    return np.where(x > 0, 0.0, a * np.exp(np.minimum(x, 0.0)))


def _np_gelu(x, a):
    from scipy.special import ndtr

    return x * ndtr(x)


def _np_gelu_d(x, a):
    from scipy.special import ndtr

    return ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


_NP = {  # name: (σ, σ', σ'')
    "sigmoid": (_np_sigmoid, lambda x, a: _np_sigmoid(x, a) * (1 - _np_sigmoid(x, a)),
                lambda x, a: _np_sigmoid(x, a) * (1 - _np_sigmoid(x, a)) * (1 - 2 * _np_sigmoid(x, a))),
    "tanh": (lambda x, a: np.tanh(x), lambda x, a: 1 - np.tanh(x) ** 2,
             lambda x, a: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "relu": (lambda x, a: np.maximum(x, 0.0), lambda x, a: (x > 0).astype(float),
             lambda x, a: np.zeros_like(x, dtype=float)),
    "leaky_relu": (lambda x, a: np.where(x > 0, x, a * x), lambda x, a: np.where(x > 0, 1.0, a),
                   lambda x, a: np.zeros_like(x, dtype=float)),
    "elu": (_np_elu, _np_elu_d, _np_elu_d2),
    "selu": (lambda x, a: SELU_SCALE * _np_elu(x, SELU_ALPHA), lambda x, a: SELU_SCALE * _np_elu_d(x, SELU_ALPHA),
             lambda x, a: SELU_SCALE * _np_elu_d2(x, SELU_ALPHA)),
    "softsign": (lambda x, a: x / (1 + np.abs(x)), lambda x, a: 1 / (1 + np.abs(x)) ** 2,
                 lambda x, a: -2 * np.sign(x) / (1 + np.abs(x)) ** 3),
    "gelu": (_np_gelu, _np_gelu_d, lambda x, a: np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) * (2 - x * x)),
    "linear": (lambda x, a: np.asarray(x, dtype=float), lambda x, a: np.ones_like(x, dtype=float),
               lambda x, a: np.zeros_like(x, dtype=float)),
}
_NP["prelu"] = _NP["leaky_relu"]


def numpy_activation(name: str, alpha: float | None = None, param: str = "activation") -> NumpyActivation:
    """The NumPy σ, σ', σ'' of a registered activation (``alpha`` defaults to the activation's own)."""
    act = get_activation(name, param)
    a = act.default_alpha if alpha is None else float(alpha)
    f, d1, d2 = _NP[act.name]
    return NumpyActivation(act.name, lambda x: f(np.asarray(x, dtype=float), a),
                           lambda x: d1(np.asarray(x, dtype=float), a),
                           lambda x: d2(np.asarray(x, dtype=float), a))

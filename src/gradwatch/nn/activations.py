"""The elementwise activation functions of the seeds, with their derivatives.

Each :class:`Activation` knows how to build its ``torch.nn`` module, evaluate itself and its derivative on a
tensor (the derivative is what the backward pass multiplies by: seed 000's σ'(z), seed 003's σ'_j(v_j)), and the
maximum of |σ'| (1/4 for the sigmoid — the reason gradients vanish). The registry is shared by the lab's models,
the watch's saturation statistic and the theory's closed forms, so the three always agree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import ArrayLike
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
    saturation: str = "none"  # where small σ' is saturation: "both" tails, "negative", "positive" or "none"

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

    def saturated(self, x: Tensor, level: float, alpha: float | None = None) -> Tensor:
        """Boolean mask of the inputs where σ is *saturated*: |σ'(x)| < level · max |σ'| on a side where σ flattens
        toward a non-trivial asymptote (both tails of the sigmoid, tanh, softsign, hardtanh, hardsigmoid; the
        negative tail of ELU/SELU; the top of ReLU6). The zero half of ReLU and the negative tails of GELU, SiLU,
        Mish and Hardswish are *inactive*, not saturated (the dead-unit statistic covers them): never counted."""
        if self.saturation == "none":
            return torch.zeros_like(x, dtype=torch.bool)
        small = self.derivative(x, alpha).abs() < level * self.max_derivative(alpha)
        if self.saturation == "negative":
            return small & (x < 0)
        if self.saturation == "positive":
            return small & (x > 0)
        return small


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


_SQRT_2_OVER_PI, _TANH_GELU_K, _QUICK_GELU_A = math.sqrt(2 / math.pi), 0.044715, 1.702


def _gelu_tanh_d(x: Tensor, _a: float) -> Tensor:
    """d/dx of ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³) (nn.GELU(approximate="tanh"), HF NewGELU/GELUTanh)."""
    t = torch.tanh(_SQRT_2_OVER_PI * (x + _TANH_GELU_K * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _TANH_GELU_K * x * x)


def _silu_d(x: Tensor, _a: float) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _mish_d(x: Tensor, _a: float) -> Tensor:
    t = torch.tanh(torch.nn.functional.softplus(x))
    return t + x * (1 - t * t) * torch.sigmoid(x)


def _hardswish_d(x: Tensor, _a: float) -> Tensor:  # PyTorch's values at the kinks -3 and 3
    return torch.where(x < -3, torch.zeros_like(x), torch.where(x <= 3, x / 3 + 0.5, torch.ones_like(x)))


def _inside(x: Tensor, lo: float, hi: float, value: float) -> Tensor:  # derivative of a clamp: value strictly inside
    return ((x > lo) & (x < hi)).to(x.dtype) * value


# PyTorch's hardsigmoid backward multiplies by 1/6 rounded to float32, also in float64: so do σ' and max σ' here
_HARDSIGMOID_SLOPE = float(np.float32(1 / 6))


@functools.cache
def _grid_max(name: str) -> float:
    """sup σ' of a smooth activation, from a float64 grid of step 1e-5 on [-10, 10] (no closed form)."""
    x = torch.linspace(-10, 10, 2_000_001, dtype=torch.float64)
    return float(ACTIVATIONS[name].derivative(x).abs().max())


class QuickGELU(nn.Module):
    """x·σ(1.702x), the GELU approximation of CLIP (HF ``QuickGELUActivation``, timm ``QuickGELU``)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(_QUICK_GELU_A * x)


def _leaky_d(x: Tensor, a: float) -> Tensor:
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, a))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation(
            "sigmoid",
            lambda a: nn.Sigmoid(),
            lambda x, a: torch.sigmoid(x),
            _sigmoid_d,
            lambda a: 0.25,
            doc="1/(1+e^-z); σ' ≤ 1/4",
            saturation="both",
        ),
        Activation(
            "tanh",
            lambda a: nn.Tanh(),
            lambda x, a: torch.tanh(x),
            lambda x, a: 1 - torch.tanh(x) ** 2,
            lambda a: 1.0,
            doc="tanh z; σ'(0) = 1",
            saturation="both",
        ),
        Activation(
            "relu",
            lambda a: nn.ReLU(),
            lambda x, a: torch.relu(x),
            lambda x, a: (x > 0).to(x.dtype),
            lambda a: 1.0,
            doc="max(z, 0)",
        ),
        Activation(
            "leaky_relu",
            lambda a: nn.LeakyReLU(a),
            lambda x, a: torch.where(x > 0, x, a * x),
            _leaky_d,
            lambda a: max(1.0, abs(a)),
            default_alpha=0.01,
            doc="max(z, αz)",
        ),
        Activation(
            "prelu",
            lambda a: nn.PReLU(init=a),
            lambda x, a: torch.where(x > 0, x, a * x),
            _leaky_d,
            lambda a: max(1.0, abs(a)),
            default_alpha=0.25,
            doc="max(z, αz) with α learned (He et al. 2015)",
        ),
        Activation(
            "elu",
            lambda a: nn.ELU(a),
            _elu,
            _elu_d,
            lambda a: max(1.0, abs(a)),
            default_alpha=1.0,
            doc="z for z > 0, α(e^z − 1) otherwise",
            saturation="negative",
        ),
        Activation(
            "selu",
            lambda a: nn.SELU(),
            lambda x, a: SELU_SCALE * _elu(x, SELU_ALPHA),
            lambda x, a: SELU_SCALE * _elu_d(x, SELU_ALPHA),
            lambda a: SELU_SCALE * SELU_ALPHA,
            doc="λ·elu(z; α) with the self-normalising constants",
            saturation="negative",
        ),
        Activation(
            "softsign",
            lambda a: nn.Softsign(),
            lambda x, a: x / (1 + x.abs()),
            lambda x, a: 1 / (1 + x.abs()) ** 2,
            lambda a: 1.0,
            doc="z/(1+|z|)",
            saturation="both",
        ),
        Activation(
            "gelu",
            lambda a: nn.GELU(),
            lambda x, a: torch.nn.functional.gelu(x),
            _gelu_d,
            lambda a: _GELU_MAX_DERIV,
            doc="z·Φ(z)",
        ),
        Activation(
            "gelu_tanh",
            lambda a: nn.GELU(approximate="tanh"),
            lambda x, a: torch.nn.functional.gelu(x, approximate="tanh"),
            _gelu_tanh_d,
            lambda a: _grid_max("gelu_tanh"),
            doc="½z(1 + tanh(√(2/π)(z + 0.044715z³))) (GPT-2's GELU)",
        ),
        Activation(
            "quick_gelu",
            lambda a: QuickGELU(),
            lambda x, a: x * torch.sigmoid(_QUICK_GELU_A * x),
            lambda x, a: _silu_d(_QUICK_GELU_A * x, a),
            lambda a: _grid_max("silu"),
            doc="z·σ(1.702z) (CLIP)",
        ),
        Activation(
            "silu",
            lambda a: nn.SiLU(),
            lambda x, a: torch.nn.functional.silu(x),
            _silu_d,
            lambda a: _grid_max("silu"),
            doc="z·σ(z), also called swish",
        ),
        Activation(
            "mish",
            lambda a: nn.Mish(),
            lambda x, a: torch.nn.functional.mish(x),
            _mish_d,
            lambda a: _grid_max("mish"),
            doc="z·tanh(softplus(z))",
        ),
        Activation(
            "hardtanh",
            lambda a: nn.Hardtanh(),
            lambda x, a: x.clamp(-1, 1),
            lambda x, a: _inside(x, -1, 1, 1.0),
            lambda a: 1.0,
            doc="clamp(z, −1, 1)",
            saturation="both",
        ),
        Activation(
            "relu6",
            lambda a: nn.ReLU6(),
            lambda x, a: x.clamp(0, 6),
            lambda x, a: _inside(x, 0, 6, 1.0),
            lambda a: 1.0,
            doc="clamp(z, 0, 6): saturated above 6, inactive below 0",
            saturation="positive",
        ),
        Activation(
            "hardswish",
            lambda a: nn.Hardswish(),
            lambda x, a: torch.nn.functional.hardswish(x),
            _hardswish_d,
            lambda a: 1.5,
            doc="z·clamp(z + 3, 0, 6)/6 (MobileNetV3)",
        ),
        Activation(
            "hardsigmoid",
            lambda a: nn.Hardsigmoid(),
            lambda x, a: torch.nn.functional.hardsigmoid(x),
            lambda x, a: _inside(x, -3, 3, _HARDSIGMOID_SLOPE),
            lambda a: _HARDSIGMOID_SLOPE,
            doc="clamp(z + 3, 0, 6)/6",
            saturation="both",
        ),
        Activation(
            "linear",
            lambda a: nn.Identity(),
            lambda x, a: x,
            lambda x, a: torch.ones_like(x),
            lambda a: 1.0,
            doc="identity",
        ),
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
    fn: Callable[[ArrayLike], np.ndarray]
    deriv: Callable[[ArrayLike], np.ndarray]
    deriv2: Callable[[ArrayLike], np.ndarray]


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


def _np_sig(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _np_silu_d2(x):
    s = _np_sig(x)
    return s * (1 - s) * (2 + x * (1 - 2 * s))


def _np_gelu_tanh(x, a):
    return 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _TANH_GELU_K * x**3)))


def _np_gelu_tanh_d(x, a, order=1):
    t = np.tanh(_SQRT_2_OVER_PI * (x + _TANH_GELU_K * x**3))
    du = _SQRT_2_OVER_PI * (1 + 3 * _TANH_GELU_K * x * x)
    if order == 1:
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du
    return (1 - t * t) * du + 0.5 * x * (1 - t * t) * (6 * _SQRT_2_OVER_PI * _TANH_GELU_K * x - 2 * t * du * du)


def _np_mish_parts(x):
    t = np.tanh(np.logaddexp(0.0, x))
    return t, _np_sig(x)


def _np_mish_d(x, a):
    t, s = _np_mish_parts(x)
    return t + x * (1 - t * t) * s


def _np_mish_d2(x, a):
    t, s = _np_mish_parts(x)
    return (1 - t * t) * s * (2 + x * (1 - s - 2 * t * s))


def _np_inside(x, lo, hi, value):
    return np.where((x > lo) & (x < hi), value, 0.0)


_NP = {  # name: (σ, σ', σ'')
    "sigmoid": (
        _np_sigmoid,
        lambda x, a: _np_sigmoid(x, a) * (1 - _np_sigmoid(x, a)),
        lambda x, a: _np_sigmoid(x, a) * (1 - _np_sigmoid(x, a)) * (1 - 2 * _np_sigmoid(x, a)),
    ),
    "tanh": (
        lambda x, a: np.tanh(x),
        lambda x, a: 1 - np.tanh(x) ** 2,
        lambda x, a: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
    ),
    "relu": (
        lambda x, a: np.maximum(x, 0.0),
        lambda x, a: (x > 0).astype(float),
        lambda x, a: np.zeros_like(x, dtype=float),
    ),
    "leaky_relu": (
        lambda x, a: np.where(x > 0, x, a * x),
        lambda x, a: np.where(x > 0, 1.0, a),
        lambda x, a: np.zeros_like(x, dtype=float),
    ),
    "elu": (_np_elu, _np_elu_d, _np_elu_d2),
    "selu": (
        lambda x, a: SELU_SCALE * _np_elu(x, SELU_ALPHA),
        lambda x, a: SELU_SCALE * _np_elu_d(x, SELU_ALPHA),
        lambda x, a: SELU_SCALE * _np_elu_d2(x, SELU_ALPHA),
    ),
    "softsign": (
        lambda x, a: x / (1 + np.abs(x)),
        lambda x, a: 1 / (1 + np.abs(x)) ** 2,
        lambda x, a: -2 * np.sign(x) / (1 + np.abs(x)) ** 3,
    ),
    "gelu": (_np_gelu, _np_gelu_d, lambda x, a: np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) * (2 - x * x)),
    "linear": (
        lambda x, a: np.asarray(x, dtype=float),
        lambda x, a: np.ones_like(x, dtype=float),
        lambda x, a: np.zeros_like(x, dtype=float),
    ),
}
_NP["prelu"] = _NP["leaky_relu"]
_A = _QUICK_GELU_A
_NP.update(
    {
        "gelu_tanh": (_np_gelu_tanh, _np_gelu_tanh_d, lambda x, a: _np_gelu_tanh_d(x, a, order=2)),
        "silu": (
            lambda x, a: x * _np_sig(x),
            lambda x, a: _np_sig(x) * (1 + x * (1 - _np_sig(x))),
            lambda x, a: _np_silu_d2(x),
        ),
        "quick_gelu": (
            lambda x, a: x * _np_sig(_A * x),
            lambda x, a: _NP["silu"][1](_A * x, a),
            lambda x, a: _A * _np_silu_d2(_A * x),
        ),
        "mish": (lambda x, a: x * _np_mish_parts(x)[0], _np_mish_d, _np_mish_d2),
        "hardtanh": (
            lambda x, a: np.clip(x, -1.0, 1.0),
            lambda x, a: _np_inside(x, -1, 1, 1.0),
            lambda x, a: np.zeros_like(x, dtype=float),
        ),
        "relu6": (
            lambda x, a: np.clip(x, 0.0, 6.0),
            lambda x, a: _np_inside(x, 0, 6, 1.0),
            lambda x, a: np.zeros_like(x, dtype=float),
        ),
        "hardswish": (
            lambda x, a: x * np.clip(x + 3, 0.0, 6.0) / 6,
            lambda x, a: np.where(x < -3, 0.0, np.where(x <= 3, x / 3 + 0.5, 1.0)),
            lambda x, a: _np_inside(x, -3, 3, 1 / 3),
        ),
        "hardsigmoid": (
            lambda x, a: np.clip(x + 3, 0.0, 6.0) / 6,
            lambda x, a: _np_inside(x, -3, 3, _HARDSIGMOID_SLOPE),
            lambda x, a: np.zeros_like(x, dtype=float),
        ),
    }
)
SATURATING = tuple(name for name, act in ACTIVATIONS.items() if act.saturation != "none")


def numpy_activation(name: str, alpha: float | None = None, param: str = "activation") -> NumpyActivation:
    """The NumPy σ, σ', σ'' of a registered activation (``alpha`` defaults to the activation's own)."""
    act = get_activation(name, param)
    a = act.default_alpha if alpha is None else float(alpha)
    f, d1, d2 = _NP[act.name]
    return NumpyActivation(
        act.name,
        lambda x: f(np.asarray(x, dtype=float), a),
        lambda x: d1(np.asarray(x, dtype=float), a),
        lambda x: d2(np.asarray(x, dtype=float), a),
    )

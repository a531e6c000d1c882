"""Singular values of a network's input–output Jacobian ∂f(x)/∂x (dynamical isometry, Saxe et al. 2014;
Pennington et al. 2017): all close to 1 means every direction of the gradient passes through undistorted."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from gradwatch.errors import ConfigError


@dataclass(frozen=True)
class JacobianSpectrum:
    singular_values: list[float]  # descending
    mean_squared: float  # mean σ², the trace of JᵀJ over the smaller dimension
    condition_number: float  # σ_max / σ_min (inf when singular)

    def to_dict(self) -> dict:
        return asdict(self)


def jacobian_spectrum(model: nn.Module, x: torch.Tensor) -> JacobianSpectrum:
    """The singular values of ∂model(x)/∂x for one input ``x`` of shape ``(d,)`` or ``(1, d)``, in float64."""
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "expected a torch.nn.Module")
    x = torch.as_tensor(x)
    if x.dim() == 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 1:
        raise ConfigError("x.shape", tuple(x.shape), "expected one input, of shape (d,) or (1, d)")
    x = x.detach().to(next(model.parameters()).dtype)
    J = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x)  # (outputs, inputs)
    s = torch.linalg.svdvals(J.detach().double())
    smallest = s[-1].item()
    return JacobianSpectrum(s.tolist(), float((s**2).mean()), s[0].item() / smallest if smallest > 0 else float("inf"))

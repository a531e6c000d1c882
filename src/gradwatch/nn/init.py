"""Weight initialisations, one plain function each, with the formula and its source.

Every function fills a weight tensor of shape ``(fan_out, fan_in)`` (``nn.Linear``'s layout; for conv kernels
the receptive field is folded into the fans as in ``torch.nn.init``) in place, using ``generator`` when given,
and returns it. :data:`INITS` maps the names the lab and the CLI use to these functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from gradwatch.errors import ConfigError, check_choice


def fans(w: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight tensor: inputs and outputs per unit, times the kernel size for convs."""
    if w.dim() < 2:
        raise ConfigError("weight.shape", tuple(w.shape), "expected a tensor with at least 2 dimensions")
    receptive = math.prod(w.shape[2:])
    return w.shape[1] * receptive, w.shape[0] * receptive


def _fan(w: Tensor, mode: str) -> int:
    fan_in, fan_out = fans(w)
    return {"fan_in": fan_in, "fan_out": fan_out}[check_choice("mode", mode, ("fan_in", "fan_out"))]


@torch.no_grad()
def normal(w: Tensor, std: float = 0.01, generator: torch.Generator | None = None) -> Tensor:
    """w ~ N(0, std²). Seed 001's paralysis and first-layer-image experiments use small fixed std."""
    if not std > 0:
        raise ConfigError("init_std", std, "must be > 0")
    return w.normal_(0.0, std, generator=generator)


@torch.no_grad()
def uniform(w: Tensor, a: float = 0.05, generator: torch.Generator | None = None) -> Tensor:
    """w ~ U[−a, a]."""
    if not a > 0:
        raise ConfigError("a", a, "must be > 0")
    return w.uniform_(-a, a, generator=generator)


@torch.no_grad()
def glorot_standard(w: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Glorot & Bengio's (2010) "standard" heuristic: w ~ U[−1/√n, 1/√n], n = fan_in (variance 1/(3n))."""
    a = 1.0 / math.sqrt(fans(w)[0])
    return w.uniform_(-a, a, generator=generator)


@torch.no_grad()
def xavier_uniform(w: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Glorot & Bengio (2010) normalised init: w ~ U[±√6/√(n_in + n_out)], so Var w = 2/(n_in + n_out).

    The compromise between n_in Var w = 1 (forward) and n_out Var w = 1 (backward) of seed 001.
    """
    fan_in, fan_out = fans(w)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return w.uniform_(-a, a, generator=generator)


@torch.no_grad()
def xavier_normal(w: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """w ~ N(0, 2/(n_in + n_out)) (Glorot & Bengio 2010, Gaussian form)."""
    fan_in, fan_out = fans(w)
    return w.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)


@torch.no_grad()
def he_normal(w: Tensor, mode: str = "fan_in", generator: torch.Generator | None = None) -> Tensor:
    """He et al. (2015): w ~ N(0, 2/n) with n = fan_in (forward) or fan_out (backward), for ReLU nets.

    Seed 001: ½ n_k Var W = 1 keeps the variance of a ReLU layer's output (or gradient) constant.
    """
    return w.normal_(0.0, math.sqrt(2.0 / _fan(w, mode)), generator=generator)


@torch.no_grad()
def he_uniform(w: Tensor, mode: str = "fan_in", generator: torch.Generator | None = None) -> Tensor:
    """He et al. (2015), uniform form: w ~ U[±√(6/n)], Var w = 2/n."""
    a = math.sqrt(6.0 / _fan(w, mode))
    return w.uniform_(-a, a, generator=generator)


@torch.no_grad()
def orthogonal(w: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """Saxe et al. (2014): a (semi-)orthogonal matrix from the QR decomposition of a Gaussian, times gain."""
    rows, cols = w.shape[0], w[0].numel()
    g = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r))  # make the decomposition unique (Mezzadri 2007)
    if rows < cols:
        q = q.T
    return w.copy_((gain * q).reshape(w.shape).to(w.dtype))


@torch.no_grad()
def spectral(w: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Seed 003: draw from a normal distribution, then scale so that the spectral norm ‖W‖₂ = 1."""
    g = torch.randn(w.shape, generator=generator, dtype=torch.float64)
    g /= torch.linalg.matrix_norm(g.reshape(w.shape[0], -1), ord=2)
    return w.copy_(g.to(w.dtype))


INITS: dict[str, Callable[..., Tensor]] = {
    "normal": normal,
    "uniform": uniform,
    "glorot_standard": glorot_standard,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "orthogonal": orthogonal,
    "spectral": spectral,
}


def get_init(name: str, param: str = "init") -> Callable[..., Tensor]:
    """Look an initialisation up by name; a :class:`ConfigError` lists the known names otherwise."""
    return INITS[check_choice(param, name, INITS)]


@torch.no_grad()
def scale_spectral_radius(w: Tensor, radius: float) -> Tensor:
    """Scale a square matrix so that its spectral radius max |λᵢ(W)| equals ``radius``.

    The echo-state-network recipe (Jaeger 2001) and Pascanu et al. 2013's "smart tanh" init (ρ = 0.95).
    """
    if w.dim() != 2 or w.shape[0] != w.shape[1]:
        raise ConfigError("weight.shape", tuple(w.shape), "spectral radius needs a square matrix")
    if not radius > 0:
        raise ConfigError("spectral_radius", radius, "must be > 0")
    current = torch.linalg.eigvals(w.double()).abs().max()
    if current == 0:
        raise ConfigError("spectral_radius", radius, "the matrix is nilpotent (all eigenvalues 0): cannot scale")
    return w.mul_((radius / current).to(w.dtype))


LSUV_TOLERANCE = 0.1  # Mishkin & Matas 2016: stop when |Var(output) − 1| < tol
LSUV_MAX_ITER = 10


@torch.no_grad()
def lsuv(
    model: torch.nn.Module,
    x: Tensor | None,
    *,
    tol: float = LSUV_TOLERANCE,
    max_iter: int = LSUV_MAX_ITER,
    generator: torch.Generator | None = None,
    layers: Sequence[torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d] | None = None,
) -> torch.nn.Module:
    """Layer-sequential unit-variance init (Mishkin & Matas 2016, "All you need is a good init").

    Every linear/conv weight is first made orthogonal; then, input side first, the weight of each layer is
    divided by the standard deviation of that layer's output on the batch ``x`` until its variance is within
    ``tol`` of 1 (at most ``max_iter`` rescalings). Data-driven: ``x`` is required.
    """
    if x is None:
        raise ConfigError("init", "lsuv", "LSUV is data-driven: pass a batch of inputs (data=...)")
    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)
    targets = layers if layers is not None else [m for m in model.modules() if isinstance(m, kinds)]
    for m in targets:
        orthogonal(m.weight, generator=generator)
    was_training = model.training
    model.eval()
    try:
        for m in targets:
            seen: list[Tensor] = []
            handle = m.register_forward_hook(lambda mod, inp, out, seen=seen: seen.append(out.detach()))
            try:
                for _ in range(max_iter):
                    seen.clear()
                    model(x)
                    var = seen[-1].var()
                    if not torch.isfinite(var) or var == 0 or abs(float(var) - 1.0) < tol:
                        break
                    m.weight.div_(var.sqrt())
            finally:
                handle.remove()
    finally:
        model.train(was_training)
    return model

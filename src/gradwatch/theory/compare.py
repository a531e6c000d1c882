"""Predictions beside measurements: random MLPs at initialisation, per-layer weight-gradient norms measured (by
autograd: the ``grad_norm`` that :func:`gradwatch.watch` records) and predicted by
:func:`~gradwatch.theory.init_variance.variance_propagation`.

Each example x ~ N(0, input_var·I) gets its own backward pass of L = gᵀ m(x) with g ~ N(0, I) (so ∂L/∂output
has unit variance, as the prediction assumes); the measured value per layer is the root mean square of ‖∂L/∂W‖
over examples and networks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from gradwatch.errors import ConfigError
from gradwatch.nn.memory import check_fits, mlp_bytes
from gradwatch.nn.mlp import init_linear_layers, mlp
from gradwatch.theory.init_variance import variance_propagation

MAX_SEED = 2**63 - 1  # torch.Generator takes seeds in [0, 2⁶⁴); numpy and the lab use [0, 2⁶³)


@dataclass(frozen=True)
class InitComparison:
    activation: str
    init: str
    sizes: list[int]
    nets: int
    examples: int
    seed: int
    layers: list[str]
    predicted: list[float]  # expected ‖∂L/∂W^l‖ per example
    measured: list[float]  # RMS over examples and nets of ‖∂L/∂W^l‖, read by watch

    @property
    def measured_over_predicted(self) -> list[float]:
        return [m / p if p > 0 else math.nan for m, p in zip(self.measured, self.predicted)]

    def to_dict(self) -> dict:
        return asdict(self) | {"measured_over_predicted": self.measured_over_predicted}


def compare_at_init(
    width: int = 256,
    depth: int = 8,
    activation: str = "tanh",
    init: str = "xavier_uniform",
    *,
    inputs: int | None = None,
    outputs: int | None = None,
    nets: int = 2,
    examples: int = 4,
    input_var: float = 1.0,
    init_std: float = 0.01,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> InitComparison:
    """Build ``nets`` random MLPs ``[inputs] + [width]·depth + [outputs]`` (default: all ``width``), measure
    per-layer weight-gradient norms ‖∂L/∂W‖ (what ``watch`` records as ``grad_norm``) and put them beside the
    variance-propagation prediction."""
    for name, v in (("width", width), ("depth", depth), ("nets", nets), ("examples", examples)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(name, v, "expected a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError("seed", seed, f"expected an integer in [0, {MAX_SEED}]")
    sizes = [inputs or width] + [width] * depth + [outputs or width]
    check_fits(
        "width" if width / 256 >= depth / 8 else "depth",
        width if width / 256 >= depth / 8 else depth,
        f"a {depth}×{width} net",
        mlp_bytes(sizes[0], sizes[1:-1], sizes[-1], 1),
    )
    prediction = variance_propagation(sizes, activation, init, input_var=input_var, init_std=init_std)
    gen = torch.Generator().manual_seed(seed)
    squares = []
    for n in range(nets):
        model = init_linear_layers(mlp(sizes, activation), init, init_std=init_std, generator=gen)
        weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]  # input to output
        norms = []
        for _ in range(examples):
            x = torch.randn(1, sizes[0], generator=gen) * math.sqrt(input_var)  # one example   (1, n_0)
            out = model(x)  # (1, n_L)
            grads = torch.autograd.grad((out * torch.randn(out.shape, generator=gen)).sum(), weights)
            norms.append(torch.stack([g.norm() for g in grads]))
        squares.append(torch.stack(norms).double().numpy() ** 2)  # [examples, layers]
        if progress:
            progress(n + 1, nets)
    measured = np.sqrt(np.concatenate(squares).mean(axis=0))
    return InitComparison(
        prediction.activation,
        init,
        sizes,
        nets,
        examples,
        seed,
        prediction.layers,
        prediction.grad_norm,
        measured.tolist(),
    )

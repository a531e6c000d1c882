"""An input image and its image in the first hidden layer (seed 001, "network paralysis, visualisation").

Seed 001 shows a digit beside "its image in the first hidden layer of a fully connected net at
w_ij ~ N(0, 0.01)" — a grey field of noise — and goes on (after Glorot & Bengio 2010): "after random
initialisation every layer receives noise, so it is best to ignore the inputs". What can be measured:

- **no picture at any scale.** A fully connected layer has no notion of pixel layout, so its units, laid out
  as the input's grid (the first hidden layer has as many units as the input has pixels), never show the
  digit — for a small *or* a properly initialised layer. The pixel-wise correlation between an input and its
  hidden image is reported; it is at the level of independent noise for every init.
- **what small weights do: almost no input-dependent signal.** Write h = σ(Wx + b). With σ_w = 0.01 the
  pre-activations are tiny, so h ≈ σ(0) + σ'(0)·Wx: every input maps to nearly the same flat image. The
  *spread* s_l = √(mean_j Var_x h_lj) (RMS over units of each unit's standard deviation across inputs, the
  input-dependent part of layer l) is, in this linear regime and in expectation over W,

      s_1 = σ'(0) σ_w √(tr Σ_x),      s_l = σ'(0) σ_w √n_{l−1} · s_{l−1},

  with Σ_x the covariance of the inputs: with σ'(0) = 1/4 every layer divides the signal by 1/(σ_w √n/4)
  (50× on 8×8 digits, 14× on MNIST), so a few layers up every input gives the same vector to float64
  precision. A properly initialised layer (Xavier by default) keeps far more spread; at a large σ_w (1 by
  default) the sigmoid saturates and the hidden image turns into binary noise.

The reading of N(0, 0.01) as σ_w = 0.01 (``0.01 * randn``) is the default; the variance reading σ_w = 0.1
is ``--init-std 0.1``. Biases are 0. Forward passes are in float64 so that spreads far below float32's
resolution are still measured. The seed does not say which data or width it used: here the net is
n → n × depth → classes on ``--dataset`` (8×8 digits by default, 28×28 MNIST with ``--dataset mnist``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field, field_validator

from gradwatch.errors import ConfigError, check_choice
from gradwatch.lab.data import load_dataset
from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.net_config import NetExperimentConfig
from gradwatch.lab.models import initialize, mlp
from gradwatch.nn.activations import get_activation
from gradwatch.nn.init import INITS
from gradwatch.theory.init_variance import weight_variance

CLAIM = (
    "With weights w ~ N(0, 0.01²) the first hidden layer turns every input into nearly the same flat image: "
    "the input-dependent part of its activity is several times smaller than with Xavier initialisation "
    "and shrinks by σ'(0)·0.01·√n in every layer above, as the linearised network predicts."
)
SATURATION_FRACTION = 0.1  # a unit counts as saturated where σ'(z) < this × max σ'
PREDICTION_RTOL = 0.15  # small init: measured spread of layer 1 within this of the linearised prediction
MIN_GAP_LAYER1 = 2.0  # small init: layer 1 spread at least this many times below the proper init's
NOISE_CORRELATION_FACTOR = 4.0  # mean |corr(input, hidden image)| below this × the chance level √(2/(πn))


class FirstLayerImageConfig(NetExperimentConfig):
    """Settings of the first-layer-image experiment; CLI flags have the same names with dashes."""

    depth: int = Field(4, ge=1, description="hidden layers (each as wide as the input has pixels)")
    init_std: float = Field(0.01, gt=0, description="σ_w of the small init N(0, σ_w²) (seed 001: 0.01)")
    proper_init: str = Field(
        "xavier_uniform", description="the properly initialised net: xavier_uniform, he_normal, ... (gradwatch.nn.init)"
    )
    large_std: float = Field(1.0, gt=0, description="σ_w of a large normal init, to show saturation")
    examples: int = Field(1000, ge=2, description="test images the spread across inputs is measured on")
    image: int = Field(0, ge=0, description="index of the test image that is shown")

    @field_validator("proper_init")
    @classmethod
    def _proper_init(cls, v: str) -> str:
        return check_choice("proper_init", v, [k for k in INITS if k not in ("normal", "uniform")])


@dataclass
class LayerImages:
    """One initialisation: the first hidden image of the shown input and per-layer statistics (input side first)."""

    label: str
    image: list[list[float]]  # h_1 of the shown input, laid out as the input image
    spread: list[float]  # s_l = √(mean_j Var_x h_lj)
    predicted_spread: list[float]  # the linearised prediction σ'(0)^l Π √(n Var W) · √(tr Σ_x)
    saturated: list[float]  # share of (unit, input) pairs with σ'(z) < SATURATION_FRACTION max σ'
    mean_activation: list[float]
    pixel_correlation: float  # mean over inputs of |corr(x, h_1)| across pixel positions

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def hidden_activity(model: torch.nn.Sequential, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(pre-activation z_l, activation h_l) of every hidden layer, float64, for inputs x [n, features]."""
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    h, z = x.double(), None
    with torch.no_grad():
        for name, module in model.double().named_children():
            if name == "output":
                break
            if isinstance(module, torch.nn.Linear):
                z = module(h)
            elif z is None:
                raise ConfigError("model", name, "expected a Linear layer before every activation")
            else:
                h = module(z)
                out.append((z, h))
    return out


def spread(h: torch.Tensor) -> float:
    """√(mean over units of the variance across inputs): the input-dependent part of a layer's activity."""
    return float(h.var(0, unbiased=False).mean().sqrt())


def linear_spread(x: torch.Tensor, weight_vars: list[float], fans: list[int], slope: float) -> list[float]:
    """The spread of every hidden layer predicted by the linearised net h ≈ σ(0) + σ'(0) W h_prev (zero biases).

    In expectation over W: s_1² = σ'(0)² Var W_1 tr Σ_x, s_l² = σ'(0)² n_{l−1} Var W_l s_{l−1}².
    """
    s = math.sqrt(float(x.double().var(0, unbiased=False).sum()))  # √tr Σ_x; then the per-unit RMS
    out = []
    for l, (v, n) in enumerate(zip(weight_vars, fans)):
        s = slope * math.sqrt(v) * s if l == 0 else slope * math.sqrt(n * v) * s
        out.append(s)
    return out


def pixel_correlation(x: torch.Tensor, h: torch.Tensor) -> float:
    """Mean over inputs of |Pearson correlation| between an input and its hidden image, position by position."""
    xc = x.double() - x.double().mean(1, keepdim=True)
    hc = h - h.mean(1, keepdim=True)
    r = (xc * hc).sum(1) / (xc.norm(dim=1) * hc.norm(dim=1)).clamp_min(1e-300)
    return float(r.abs().mean())


def measure(
    cfg: FirstLayerImageConfig,
    label: str,
    init: str,
    std: float,
    x: torch.Tensor,
    n_classes: int,
    shape: tuple[int, ...],
) -> LayerImages:
    """Build the n → n×depth → classes net with ``init`` (σ = ``std`` for normal) and measure it on x."""
    n = x.shape[1]
    model = mlp([n] * (cfg.depth + 1) + [n_classes], cfg.activation)
    initialize(model, init, init_std=std, generator=torch.Generator().manual_seed(cfg.seed))
    layers = hidden_activity(model, x)
    act = get_activation(cfg.activation)
    limit = SATURATION_FRACTION * act.max_derivative()
    slope = float(act.derivative(torch.zeros(1, dtype=torch.float64)))
    wvars = [weight_variance(init, n, n, std)] * cfg.depth
    h1 = layers[0][1]
    return LayerImages(
        label=label,
        image=h1[cfg.image].reshape(shape).tolist(),
        spread=[spread(h) for _, h in layers],
        predicted_spread=linear_spread(x, wvars, [n] * cfg.depth, slope),
        saturated=[float((act.derivative(z) < limit).double().mean()) for z, _ in layers],
        mean_activation=[float(h.mean()) for _, h in layers],
        pixel_correlation=pixel_correlation(x, h1),
    )


def _run(cfg: FirstLayerImageConfig, progress: Progress) -> ExperimentResult:
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    examples = min(cfg.examples if not cfg.quick else min(cfg.examples, 300), len(data.x_test))
    if cfg.image >= examples:
        raise ConfigError("image", cfg.image, f"must be < the number of test images used ({examples})")
    x = data.x_test[:examples]
    shape = data.input_shape if len(data.input_shape) == 2 else (1, data.n_features)
    inits = {
        f"N(0, {cfg.init_std:g}²)": ("normal", cfg.init_std),
        cfg.proper_init: (cfg.proper_init, 0.0),
        f"N(0, {cfg.large_std:g}²)": ("normal", cfg.large_std),
    }
    rows = [
        measure(cfg, label, init, std, x, data.n_classes, shape)
        for label, (init, std) in progress.track(inits.items(), "initialisations", total=len(inits))
    ]
    small, proper, large = rows
    n = data.n_features
    chance = math.sqrt(2 / (math.pi * n))
    gap = [p / s for p, s in zip(proper.spread, small.spread)]
    error = abs(small.spread[0] / small.predicted_spread[0] - 1)
    holds = (
        gap[0] >= MIN_GAP_LAYER1
        and all(b > a for a, b in zip(gap, gap[1:]))
        and error <= PREDICTION_RTOL
        and all(r.pixel_correlation < NOISE_CORRELATION_FACTOR * chance for r in rows)
    )
    evidence = (
        f"spread of the first hidden layer across {examples} inputs: {small.spread[0]:.3g} at "
        f"{small.label} (linearised prediction {small.predicted_spread[0]:.3g}) against "
        f"{proper.spread[0]:.3g} with {proper.label} ({gap[0]:.3g}×), {gap[-1]:.3g}× by layer {cfg.depth}; "
        f"mean |corr(input, hidden image)| {small.pixel_correlation:.2f} / {proper.pixel_correlation:.2f} / "
        f"{large.pixel_correlation:.2f} (noise level {chance:.2f}); {large.label} saturates "
        f"{100 * large.saturated[0]:.0f} % of layer 1"
    )
    table = Table(
        f"{data.source}: {n} → {cfg.depth}×{n} {cfg.activation} → {data.n_classes}, zero biases, "
        f"{examples} test inputs, seed {cfg.seed} (spread = RMS over units of the std across inputs)",
        ["init", "layer", "spread", "linearised prediction", "mean activation", "saturated %", "|corr(x, h₁)|"],
        [
            [
                r.label,
                l + 1,
                r.spread[l],
                r.predicted_spread[l],
                r.mean_activation[l],
                100 * r.saturated[l],
                r.pixel_correlation if l == 0 else None,
            ]
            for r in rows
            for l in range(cfg.depth)
        ],
    )
    from gradwatch.report.plots import LayerProfiles
    from gradwatch.report.plots_images import ImageGrid

    inp = x[cfg.image].reshape(shape).tolist()
    images = {f"input (label {int(data.y_test[cfg.image])})": inp} | {f"h₁ at {r.label}": r.image for r in rows}
    figures = {
        "main": ImageGrid(
            {"same scale [0, 1]": (images, (0.0, 1.0)), "each image's own scale": (images, None)},
            title=f"An input and its image in the first hidden layer ({cfg.activation}, {data.name})",
        ),
        "spread": LayerProfiles(
            {f"{r.label} measured": r.spread for r in rows} | {f"{small.label} linearised": small.predicted_spread},
            ylabel="spread of h across inputs (activation units)",
            title="Input-dependent signal per hidden layer at initialisation",
        ),
    }
    numbers = {
        "inputs": n,
        "examples": examples,
        "dataset_source": data.source,
        "chance_correlation": chance,
        "proper_over_small": gap,
        "layer1_prediction_error": error,
        "inits": {r.label: r.to_dict() for r in rows},
    }
    return ExperimentResult(
        name="first-layer-image",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=[table],
        figures=figures,
    )


EXPERIMENT = Experiment(
    name="first-layer-image",
    seeds="001",
    summary="an input and its first-hidden-layer image at N(0, 0.01²), Xavier and a large init",
    claim=CLAIM,
    config=FirstLayerImageConfig,
    run=_run,
)

"""The one-neuron-per-layer network (seeds 000, 001, 004): every factor w_j σ'(z_j), ∂C/∂b_j and the bounds.

z_j = w_j a_{j−1} + b_j, a_j = σ(z_j), a_0 = x, C = ½(a_L − t)² (seed 001's loss), so

    ∂C/∂b_j = σ'(z_j) · Π_{k>j} w_k σ'(z_k) · (a_L − t).

Seed 000 draws w_j ~ N(0, 1) ("most weights satisfy |w_j| < 1, so mostly |w_j σ'(z_j)| < 1/4") and biases
N(0, 1) (Nielsen); seed 001 bounds ∂E/∂x ≤ 2·(1/4)^5·w_1…w_5 (|y − t| ≤ 2); seed 003 bounds
‖δ_j‖ ≤ 0.25^{n−j+1} C when |w| ≤ 1. Here ``samples`` random chains are drawn (x, t ~ U[0, 1]), each one is
differentiated by :func:`gradwatch.theory.chain`, and per layer the median factor, the median |∂C/∂b_j| and
the largest ratio to the bound |a_L − t| (max σ')^{L−j+1} Π_{k>j}|w_k| are reported — for the sigmoid and,
as seed 000's exercise 1 suggests, for ReLU (max σ' = 1: the factor is |w_j| or 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.net_config import ActivationExperimentConfig
from gradwatch.theory.chain import chain

CLAIM = (
    "In the one-neuron-per-layer chain with w ~ N(0, 1) every sigmoid layer multiplies the gradient by "
    "|w_j σ'(z_j)| ≤ |w_j|/4, mostly below 1/4, so ∂C/∂b_j shrinks geometrically toward the input and never "
    "exceeds the seeds' bounds, while ReLU's factor is |w_j| or 0: surviving gradients shrink far less per "
    "layer, but a dead unit zeroes them."
)
QUICK_SAMPLES = 2000
SEED_CONSTANT = 2.0  # seed 001 bounds |y − t| by 2
BOUND_SLACK = 1 + 1e-12  # floating-point slack when checking |∂C/∂b_j| ≤ bound
SLOWER_FACTOR = 3.0  # sigmoid's median per-layer factor must be this many times below ReLU's


class ChainConfig(ActivationExperimentConfig):
    depth: int = Field(5, ge=1, description="layers L of the chain (seed 001: 5, seed 000: 4)")
    samples: int = Field(20000, ge=10, description=f"random chains drawn (--quick: {QUICK_SAMPLES})")
    weight_std: float = Field(1.0, gt=0, description="w_j ~ N(0, weight_std²) (seed 000: 1)")
    bias_std: float = Field(1.0, ge=0, description="b_j ~ N(0, bias_std²) (Nielsen: 1; seed 001: 0)")
    activation: str = Field("sigmoid", description="the saturating activation compared with relu")


@dataclass
class Draw:
    """The random chains: arrays [samples, depth] of weights and biases, [samples] of inputs x and targets t."""

    weights: np.ndarray
    biases: np.ndarray
    x: np.ndarray
    t: np.ndarray


def draw(cfg: ChainConfig) -> Draw:
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.samples, QUICK_SAMPLES) if cfg.quick else cfg.samples
    w = rng.normal(0.0, cfg.weight_std, (n, cfg.depth))
    b = rng.normal(0.0, cfg.bias_std, (n, cfg.depth)) if cfg.bias_std > 0 else np.zeros((n, cfg.depth))
    return Draw(w, b, rng.uniform(0, 1, n), rng.uniform(0, 1, n))


def half_squared_error_grad(t: float) -> Callable[[float], float]:
    """∂C/∂a_L of C = ½(a_L − t)² as a function of the output a_L."""
    return lambda y: y - t


def differentiate(d: Draw, activation: str, progress: Progress) -> dict[str, np.ndarray]:
    """Every chain through :func:`gradwatch.theory.chain`; arrays [samples, depth] (``grad_x``: [samples])."""
    keys = ("factors", "grad_b", "bound_b")
    out: dict[str, list] = {k: [] for k in keys + ("grad_x", "bound_x", "loss_grad")}
    for i in progress.track(range(len(d.x)), f"{activation} chains", total=len(d.x)):
        r = chain(d.weights[i], d.biases[i], x=d.x[i], activation=activation, loss_grad=half_squared_error_grad(d.t[i]))
        for k in keys:
            out[k].append(getattr(r, k))
        out["grad_x"].append(r.grad_x)
        out["bound_x"].append(r.bound_x)
        out["loss_grad"].append(r.loss_grad)
    return {k: np.asarray(v) for k, v in out.items()}


def summarise(d: Draw, r: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-layer medians and bound checks of one activation (layer 1 = nearest the input, index 0)."""
    f, g, bound = np.abs(r["factors"]), np.abs(r["grad_b"]), r["bound_b"]
    alive = g > 0
    seed001 = SEED_CONSTANT * 0.25 ** d.weights.shape[1] * np.prod(np.abs(d.weights), axis=1)
    return {
        "median_factor": np.median(f, 0).tolist(),
        "share_factor_below_quarter": (f < 0.25).mean(0).tolist(),
        "median_abs_grad_b": np.median(g, 0).tolist(),
        "median_abs_grad_b_nonzero": [
            float(np.median(g[alive[:, j], j])) if alive[:, j].any() else 0.0 for j in range(g.shape[1])
        ],
        "share_zero_grad_b": (~alive).mean(0).tolist(),
        "median_bound_b": np.median(bound, 0).tolist(),
        "max_ratio_to_bound": (g / np.where(bound > 0, bound, np.inf)).max(0).tolist(),
        "bound_violations": int((g > bound * BOUND_SLACK).sum()),
        "seed001_bound_violations": int((np.abs(r["grad_x"]) > seed001 * BOUND_SLACK).sum()),
        "median_ratio_to_seed001_bound": float(np.median(np.abs(r["grad_x"]) / seed001)),
    }


def _run(cfg: ChainConfig, progress: Progress) -> ExperimentResult:
    d = draw(cfg)
    acts = [cfg.activation, "relu"] if cfg.activation != "relu" else ["relu"]
    results = {a: differentiate(d, a, progress) for a in acts}
    stats = {a: summarise(d, r) for a, r in results.items()}
    sig, relu = stats[acts[0]], stats["relu"]
    L = cfg.depth
    per_layer = lambda s: math.exp(np.mean(np.log(s["median_factor"])))  # noqa: E731 - geometric mean
    alive_factor = float(np.median(np.abs(d.weights)))  # ReLU's factor where the unit is alive
    holds = (
        sig["bound_violations"] == 0
        and relu["bound_violations"] == 0
        and sig["seed001_bound_violations"] == 0
        and all(a < b for a, b in zip(sig["median_abs_grad_b"], sig["median_abs_grad_b"][1:]))
        and min(sig["share_factor_below_quarter"]) > 0.5
        and per_layer(sig) * SLOWER_FACTOR < alive_factor
        and relu["share_zero_grad_b"][0] > 0.3
    )
    n = len(d.x)
    evidence = (
        f"over {n} chains of {L} layers: the median sigmoid factor |w_j σ'(z_j)| is {per_layer(sig):.3g} per "
        f"layer (below 1/4 in {100 * min(sig['share_factor_below_quarter']):.0f}–"
        f"{100 * max(sig['share_factor_below_quarter']):.0f} % of layers), median |∂C/∂b_j| falls from "
        f"{sig['median_abs_grad_b'][-1]:.2g} (layer {L}) to {sig['median_abs_grad_b'][0]:.2g} (layer 1); "
        f"{sig['bound_violations'] + relu['bound_violations']} violations of the bounds (largest ratio "
        f"{max(sig['max_ratio_to_bound']):.2f}); seed 001's 2·(1/4)^{L}·Π|w| holds for all, median "
        f"|∂C/∂x| is {sig['median_ratio_to_seed001_bound']:.2g} of it; ReLU's factor is |w_j| (median "
        f"{alive_factor:.2f}) where alive, but ∂C/∂b_1 is exactly 0 in "
        f"{100 * relu['share_zero_grad_b'][0]:.0f} % of chains"
    )
    tables = [
        Table(
            f"{n} chains, w ~ N(0, {cfg.weight_std:g}²), b ~ N(0, {cfg.bias_std:g}²), x, t ~ U[0, 1], "
            f"C = ½(a_L − t)²; layer 1 = nearest the input",
            [
                "activation",
                "layer j",
                "median |w_j σ'(z_j)|",
                "share < 1/4",
                "median |∂C/∂b_j|",
                "median bound",
                "max |∂C/∂b_j| / bound",
                "share ∂C/∂b_j = 0",
            ],
            [
                [
                    a,
                    j + 1,
                    s["median_factor"][j],
                    s["share_factor_below_quarter"][j],
                    s["median_abs_grad_b"][j],
                    s["median_bound_b"][j],
                    s["max_ratio_to_bound"][j],
                    s["share_zero_grad_b"][j],
                ]
                for a, s in stats.items()
                for j in range(L)
            ],
        )
    ]
    examples = [
        chain(
            d.weights[i], d.biases[i], x=d.x[i], activation=acts[0], loss_grad=half_squared_error_grad(d.t[i])
        ).to_dict()
        | {"t": float(d.t[i])}
        for i in range(3)
    ]
    from gradwatch.report.plots import LayerProfiles

    profiles = {f"{a} median |∂C/∂b_j|": s["median_abs_grad_b"] for a, s in stats.items() if a != "relu"}
    profiles |= {
        "relu median |∂C/∂b_j| where ≠ 0": relu["median_abs_grad_b_nonzero"],
        f"{acts[0]} median bound (1/4)^(L−j+1)·Π|w_k|·|a_L − t|": sig["median_bound_b"],
    }
    figures = {
        "main": LayerProfiles(
            profiles,
            ylabel="|∂C/∂b_j|",
            xlabel="layer j (1 = nearest the input)",
            title=f"One neuron per layer, {L} layers: gradient per layer ({n} chains)",
        )
    }
    numbers = {
        "samples": n,
        "depth": L,
        "activations": stats,
        "relu_alive_factor_median": alive_factor,
        "sigmoid_geometric_median_factor": per_layer(sig),
        "examples": examples,
    }
    return ExperimentResult(
        name="chain",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=tables,
        figures=figures,
    )


EXPERIMENT = Experiment(
    name="chain",
    seeds="000, 001, 003, 004",
    summary="one neuron per layer: the factors w_j σ'(z_j), ∂C/∂b_j and their bounds, sigmoid vs ReLU",
    claim=CLAIM,
    config=ChainConfig,
    run=_run,
)

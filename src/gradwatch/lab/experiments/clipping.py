"""Exploding gradients and three remedies (seeds 000 remedy e, 002, 003): clipping by norm, by value, and the
weight constraint ‖W_j‖₂ ≤ 1 with a 1-Lipschitz activation.

The exploding configuration: a deep ReLU net whose weights are N(0, σ²) with σ well above He's √(2/n) (default
0.3 for 64 units, 2.4× He), trained with plain SGD: every layer multiplies the backward signal by about
σ√(n/2) > 1, the first step's gradient is in the hundreds and training diverges to a non-finite loss. The same
net and steps with Pascanu et al.'s clipping by norm (g ← c·g/‖g‖ when ‖g‖ > c, threshold 1 as in their
synthetic tasks), with clipping every element to [−c, c], and with seed 003's constraint: orthogonal init
(‖W_j‖₂ = 1) and each weight projected onto {‖W‖₂ ≤ 1} after every step. Seed 003's argument,
δ_j = W_jᵀ(δ_{j+1} ⊙ σ'(W_j z_j + b_j)) ⇒ ‖δ_j‖₂ ≤ ‖W_j‖₂ ‖δ_{j+1}‖₂ ≤ ‖δ_{j+1}‖₂, is checked on every example of a
test batch, layer by layer, at initialisation and after training (δ_j = ∂L/∂z_j, z_j the input of the j-th
affine map; δ_{n+1} = ∂L/∂logits).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from gradwatch import lab
from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.trained import TrainedExperimentConfig, error_rate, open_store, training_config
from gradwatch.lab.models import build_model, linear_layers
from gradwatch.lab.prepare import prepare
from gradwatch.stat_names import GRAD_NORM

CLAIM = (
    "A net whose gradients explode diverges under plain SGD; clipping the gradient by norm or by value lets "
    "the same net train, and with ‖W_j‖₂ ≤ 1 and a 1-Lipschitz activation ‖δ_j‖ ≤ ‖δ_{j+1}‖ at every layer."
)
FULL_STEPS, QUICK_STEPS = 3000, 300
MONOTONE_TOLERANCE = 1e-5  # relative slack for float32 rounding in ‖δ_j‖ ≤ ‖δ_{j+1}‖
PROBE_EXAMPLES = 256


class ClippingConfig(TrainedExperimentConfig):
    """Settings of the clipping experiment; the CLI flags have the same names with dashes."""

    depth: int = Field(10, ge=1, description="hidden layers")
    width: int = Field(64, ge=1, description="units per hidden layer")
    activation: str = Field(
        "relu", description="hidden activation (1-Lipschitz for the constraint: relu, tanh, leaky_relu, …)"
    )
    init_std: float = Field(0.3, gt=0, description="σ of the exploding N(0, σ²) init")
    lr: float = Field(0.02, gt=0, description="SGD learning rate")
    clip_norm: float = Field(1.0, gt=0, description="threshold of clipping by global norm (Pascanu et al.: 1)")
    clip_value: float = Field(0.01, gt=0, description="threshold of clipping every gradient element")
    steps: int | None = Field(None, ge=1, description=f"SGD steps [default: {FULL_STEPS}; {QUICK_STEPS} with --quick]")
    batch_size: int = Field(64, ge=2, description="examples per step")


def input_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example ‖δ_j‖₂ for every affine map j (δ_j = ∂L/∂ its input) and ‖∂L/∂logits‖ last: ``[n, maps + 1]``.

    L is the mean cross-entropy over the batch (each example's δ carries the factor 1/n). The model's
    parameter gradients are left untouched; the hooks are removed.
    """
    inputs: list[torch.Tensor] = []

    def keep(_module, args):
        inputs.append(args[0])

    handles = [m.register_forward_pre_hook(keep) for _, m in linear_layers(model)]
    was = model.training
    try:
        model.eval()
        logits = model(x.detach().requires_grad_(True))
        grads = torch.autograd.grad(F.cross_entropy(logits, y), inputs + [logits])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return torch.stack([g.reshape(len(x), -1).norm(dim=1) for g in grads], dim=1).detach()


def delta_profile(norms: torch.Tensor) -> dict:
    """Mean ‖δ_j‖ per layer, the share of (example, layer) pairs with ‖δ_j‖ ≤ ‖δ_{j+1}‖, and mean ‖δ_1‖ over
    mean ‖δ_{n+1}‖ (how much the backward pass amplifies from the logits to the input)."""
    n = norms.double()
    ok = n[:, :-1] <= n[:, 1:] * (1 + MONOTONE_TOLERANCE)
    return {
        "mean_delta_norm": n.mean(0).tolist(),
        "share_nonincreasing": float(ok.float().mean()),
        "input_over_output": float(n[:, 0].mean() / n[:, -1].mean()),
    }


def spectral_norms(model: nn.Module) -> list[float]:
    """‖W‖₂ of every affine map (largest singular value, NumPy SVD in float64)."""
    return [
        float(np.linalg.svd(m.weight.detach().double().numpy(), compute_uv=False)[0]) for _, m in linear_layers(model)
    ]


def run(cfg: ClippingConfig, progress: Progress) -> ExperimentResult:
    steps = cfg.steps or (QUICK_STEPS if cfg.quick else FULL_STEPS)
    base = training_config(
        cfg,
        steps,
        depth=cfg.depth,
        width=cfg.width,
        activation=cfg.activation,
        init="normal",
        init_std=cfg.init_std,
        optimizer="sgd",
        lr=cfg.lr,
    )
    plan: dict[str, dict[str, Any]] = {
        "no remedy": {},
        f"clip norm {cfg.clip_norm:g}": {"clip_norm": cfg.clip_norm},
        f"clip value {cfg.clip_value:g}": {"clip_value": cfg.clip_value},
        "‖W‖₂ ≤ 1": {"init": "orthogonal", "max_spectral_norm": 1.0},
    }
    data = prepare(base)
    x, y = data.x_test[:PROBE_EXAMPLES], data.y_test[:PROBE_EXAMPLES]
    runs, at_init = {}, {}
    with open_store(cfg) as store:
        for label, kw in progress.track(plan.items(), "clipping: training", total=len(plan)):
            cfg_run = lab.Config(**{**base.to_dict(), **kw})
            init_model = build_model(cfg_run, data.n_in, data.n_out, generator=torch.Generator().manual_seed(cfg.seed))
            at_init[label] = delta_profile(input_gradients(init_model, x, y))
            runs[label] = lab.train(cfg_run, store=store)
    constrained = runs["‖W‖₂ ≤ 1"]
    trained_delta = delta_profile(input_gradients(constrained.model, x, y))
    numbers: dict[str, Any] = {
        "dataset": constrained.source,
        "steps": steps,
        "train_loss": {label: [float(v) for v in r.metric("train_loss")] for label, r in runs.items()},
        "epoch_steps": {label: [int(v) for v in r.metric("step")] for label, r in runs.items()},
        "final_train_loss": {label: float(r.metric("train_loss")[-1]) for label, r in runs.items()},
        "final_accuracy": {label: 1 - error_rate(r) for label, r in runs.items()},
        "first_grad_norm": {label: float(np.linalg.norm(r.history.stat(GRAD_NORM)[0])) for label, r in runs.items()},
        "delta_at_init": at_init,
        "delta_constrained_trained": trained_delta,
        "spectral_norms_constrained": spectral_norms(constrained.model),
    }
    finals = numbers["final_accuracy"]
    diverged = not np.isfinite(numbers["final_train_loss"]["no remedy"])
    clipped = [label for label in plan if label.startswith("clip")]
    holds = (
        diverged
        and all(finals[c] > 0.2 and np.isfinite(numbers["final_train_loss"][c]) for c in clipped)
        and at_init["‖W‖₂ ≤ 1"]["share_nonincreasing"] == 1.0
        and trained_delta["share_nonincreasing"] == 1.0
        and at_init["no remedy"]["input_over_output"] > 10
    )
    evidence = (
        f"at init ‖δ_1‖/‖δ_out‖ is {at_init['no remedy']['input_over_output']:.3g} and plain SGD ends with "
        f"loss {numbers['final_train_loss']['no remedy']:.3g}; clipped by norm / by value the net reaches "
        f"{finals[clipped[0]]:.3f} / {finals[clipped[1]]:.3f} training accuracy; with ‖W‖₂ ≤ 1 "
        f"‖δ_j‖ ≤ ‖δ_{{j+1}}‖ holds for {at_init['‖W‖₂ ≤ 1']['share_nonincreasing']:.0%} of example-layer "
        f"pairs at init and {trained_delta['share_nonincreasing']:.0%} after training "
        f"(max ‖W_j‖₂ = {max(numbers['spectral_norms_constrained']):.4f})"
    )
    return ExperimentResult(
        name="clipping",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=_tables(cfg, numbers),
        figures=_figures(cfg, numbers),
        run_ids=[r.id for r in runs.values()],
    )


def _tables(cfg: ClippingConfig, numbers: dict) -> list[Table]:
    net = f"{cfg.depth}×{cfg.width} {cfg.activation}, N(0, {cfg.init_std:g}²), SGD lr {cfg.lr:g}"
    main = Table(
        f"{numbers['dataset']}; {net}; {numbers['steps']} steps; seed {cfg.seed}",
        [
            "remedy",
            "‖g‖ stepped on at step 1 (after clipping)",
            "final train loss",
            "final train acc",
            "‖δ_1‖/‖δ_out‖ at init",
            "‖δ_j‖ ≤ ‖δ_j+1‖ at init",
        ],
        [
            [
                label,
                numbers["first_grad_norm"][label],
                numbers["final_train_loss"][label],
                numbers["final_accuracy"][label],
                d["input_over_output"],
                d["share_nonincreasing"],
            ]
            for label, d in numbers["delta_at_init"].items()
        ],
    )
    trained = numbers["delta_constrained_trained"]
    per_layer = Table(
        "‖W‖₂ ≤ 1 after training: mean ‖δ_j‖ per affine map (input → logits) and ‖W_j‖₂",
        ["j", "mean ‖δ_j‖", "‖W_j‖₂"],
        [
            [j + 1, d, w]
            for j, (d, w) in enumerate(zip(trained["mean_delta_norm"], numbers["spectral_norms_constrained"] + [None]))
        ],
    )
    return [main, per_layer]


def _figures(cfg: ClippingConfig, numbers: dict) -> dict:
    from gradwatch.report.plots import Curves, LayerProfiles

    diverged = {
        label: "" if np.isfinite(loss[-1]) else " (diverged: loss not finite, not drawn)"
        for label, loss in numbers["train_loss"].items()
    }
    main = Curves(
        {
            label + diverged[label]: (numbers["epoch_steps"][label], loss)
            for label, loss in numbers["train_loss"].items()
        },
        xlabel="training step",
        ylabel="training loss (cross-entropy)",
        logy=True,
        title=f"Exploding {cfg.depth}×{cfg.width} {cfg.activation} net: plain SGD and remedies",
    )
    profiles = LayerProfiles(
        {
            "exploding init (no remedy)": numbers["delta_at_init"]["no remedy"]["mean_delta_norm"],
            "‖W‖₂ ≤ 1 at init": numbers["delta_at_init"]["‖W‖₂ ≤ 1"]["mean_delta_norm"],
            "‖W‖₂ ≤ 1 trained": numbers["delta_constrained_trained"]["mean_delta_norm"],
        },
        ylabel="mean ‖δ_j‖ = ‖∂L/∂z_j‖",
        xlabel="j (1 = input of the first layer; last = logits)",
        title="Back-propagated δ_j layer by layer",
    )
    return {"main": main, "deltas": profiles}


EXPERIMENT = Experiment(
    name="clipping",
    seeds="000, 002, 003",
    summary="exploding net: plain SGD diverges; clipping by norm / value, and ‖W‖₂ ≤ 1 giving ‖δ_j‖ ≤ ‖δ_j+1‖",
    claim=CLAIM,
    config=ClippingConfig,
    run=run,
)

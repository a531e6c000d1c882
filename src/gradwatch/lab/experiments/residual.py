"""Residual networks and the degradation of plain nets (seed 003; He, Zhang, Ren & Sun 2016).

Seed 003: a residual layer computes z_{j+1} = z_j + σ(W_j z_j + b_j); with W_j = 0, b_j = 0 and σ(0) = 0 it is the
identity, so extra layers "do no harm" — a deeper residual net can always do what a shallower one does, while a
deeper *plain* net is harder to optimise and ends with a *higher training error* (degradation: not overfitting).
Stochastic depth drops each residual branch with probability ρ during training.

Setup: fully connected ReLU nets of ``width`` units, He-normal init, batch norm before each ReLU (as in ResNets,
so the plain nets' failure is not plain vanishing at init), SGD with momentum, the same steps for every depth.
He et al. used conv nets on CIFAR-10/ImageNet (20–110 layers); ours are MLPs on the embedded 8×8 digits or
MNIST, so the depths where degradation shows are smaller. The per-layer gradient norms ‖∂L/∂W_j‖ are the watch's
``grad_norm`` at the first step: in the deepest plain net (with BN) they *grow* toward the input by two to three
orders of magnitude (batch norm's gradient explosion at initialisation, Yang et al. 2019), in the residual net
they stay within about an order of magnitude. Stochastic depth uses the same drop probability for every block
(Huang et al. 2016 decay it linearly with depth).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gradwatch import lab
from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.trained import (
    TrainedExperimentConfig,
    error_rate,
    first_step_layer_norms,
    open_store,
    training_config,
)
from gradwatch.stat_names import GRAD_NORM

CLAIM = (
    "Plain nets end with a higher training error as they get deeper (degradation) while residual nets of "
    "the same depth keep it low, also with stochastic depth."
)
FULL_DEPTHS, QUICK_DEPTHS = [2, 4, 8, 16, 32, 48], [2, 8, 32]
FULL_STEPS, QUICK_STEPS = 3000, 300
DEGRADATION_MARGIN = 0.05  # the deepest plain net's training error must exceed the shallowest's by this much


class ResidualConfig(TrainedExperimentConfig):
    """Settings of the residual experiment; the CLI flags have the same names with dashes."""

    depths: list[int] | None = Field(
        None,
        description=f"hidden layers of the nets compared [default: "
        f"{','.join(map(str, FULL_DEPTHS))}; "
        f"{','.join(map(str, QUICK_DEPTHS))} with --quick]",
    )
    width: int = Field(32, ge=1, description="units per hidden layer")
    activation: str = Field("relu", description="hidden activation")
    init: str = Field("he_normal", description="weight initialisation")
    norm: str = Field("batch", description="none, batch or layer: normalisation before each activation")
    lr: float = Field(0.05, gt=0, description="SGD (momentum 0.9) learning rate")
    steps: int | None = Field(
        None, ge=1, description=f"SGD steps per net [default: {FULL_STEPS}; {QUICK_STEPS} with --quick]"
    )
    batch_size: int = Field(64, ge=2, description="examples per step")
    layer_drop: float = Field(0.2, gt=0, lt=1, description="stochastic depth: probability ρ of dropping a block")


def run(cfg: ResidualConfig, progress: Progress) -> ExperimentResult:
    depths = sorted(cfg.depths or (QUICK_DEPTHS if cfg.quick else FULL_DEPTHS))
    steps = cfg.steps or (QUICK_STEPS if cfg.quick else FULL_STEPS)
    base = training_config(
        cfg,
        steps,
        width=cfg.width,
        activation=cfg.activation,
        init=cfg.init,
        norm=cfg.norm,
        optimizer="momentum",
        lr=cfg.lr,
    )
    plan = [(d, kind) for d in depths for kind in ("plain", "residual")] + [(depths[-1], "stochastic depth")]
    runs = {}
    with open_store(cfg) as store:
        for depth, kind in progress.track(plan, "residual: training", total=len(plan)):
            runs[(depth, kind)] = lab.train(
                base,
                store=store,
                depth=depth,
                residual=kind != "plain",
                layer_drop=cfg.layer_drop if kind == "stochastic depth" else 0.0,
            )
    err = {kind: [error_rate(runs[(d, kind)]) for d in depths] for kind in ("plain", "residual")}
    deepest = depths[-1]
    sd = runs[(deepest, "stochastic depth")]
    profiles = {}
    for kind in ("plain", "residual"):
        names, norms = first_step_layer_norms(runs[(deepest, kind)])
        profiles[kind] = {
            "layers": [n for n in names if not n.endswith(".proj")],
            GRAD_NORM: [g for n, g in zip(names, norms) if not n.endswith(".proj")],
        }
    numbers: dict[str, Any] = {
        "dataset": sd.source,
        "depths": depths,
        "steps": steps,
        "train_error": err,
        "test_accuracy": {
            kind: [runs[(d, kind)].final["test_accuracy"] for d in depths] for kind in ("plain", "residual")
        },
        "stochastic_depth": {
            "depth": deepest,
            "layer_drop": cfg.layer_drop,
            "train_error": error_rate(sd),
            "test_accuracy": sd.final["test_accuracy"],
        },
        "grad_norm_at_init": profiles,
    }
    degradation = err["plain"][-1] - err["plain"][0]
    holds = (
        degradation > DEGRADATION_MARGIN
        and err["residual"][-1] < err["plain"][-1] - DEGRADATION_MARGIN
        and err["residual"][-1] <= err["residual"][0] + DEGRADATION_MARGIN
        and error_rate(sd) < err["plain"][-1] - DEGRADATION_MARGIN
    )
    evidence = (
        f"training error after {steps} steps at depth {depths[0]} → {deepest}: plain "
        f"{err['plain'][0]:.3f} → {err['plain'][-1]:.3f}, residual {err['residual'][0]:.3f} → "
        f"{err['residual'][-1]:.3f}, residual with stochastic depth (ρ = {cfg.layer_drop:g}) "
        f"{error_rate(sd):.3f}"
    )
    table = Table(
        f"{sd.source}; {cfg.width}-unit {cfg.activation} layers, {cfg.init}, norm {cfg.norm}, SGD+momentum "
        f"lr {cfg.lr:g}, {steps} steps; seed {cfg.seed}",
        ["hidden layers", "plain train error", "residual train error", "plain test acc", "residual test acc"],
        [
            [d, ep, er, ap, ar]
            for d, ep, er, ap, ar in zip(
                depths,
                err["plain"],
                err["residual"],
                numbers["test_accuracy"]["plain"],
                numbers["test_accuracy"]["residual"],
            )
        ],
    )
    sd_table = Table(
        f"Stochastic depth at {deepest} layers (each block dropped with probability {cfg.layer_drop:g} "
        "in training, scaled by its survival probability at test)",
        ["net", "train error", "test acc"],
        [
            ["residual", err["residual"][-1], numbers["test_accuracy"]["residual"][-1]],
            [f"residual, stochastic depth ρ = {cfg.layer_drop:g}", error_rate(sd), sd.final["test_accuracy"]],
        ],
    )
    return ExperimentResult(
        name="residual",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=[table, sd_table],
        figures=_figures(cfg, numbers),
        run_ids=[r.id for r in runs.values()],
    )


def _figures(cfg: ResidualConfig, numbers: dict) -> dict:
    from gradwatch.report.plots import Curves, LayerProfiles

    depths, err = numbers["depths"], numbers["train_error"]
    sd = numbers["stochastic_depth"]
    main = Curves(
        {
            "plain": (depths, err["plain"]),
            "residual": (depths, err["residual"]),
            f"residual, stochastic depth ρ = {sd['layer_drop']:g}": ([sd["depth"]], [sd["train_error"]]),
        },
        xlabel="hidden layers",
        ylabel="final training error (share misclassified)",
        markers=True,
        title=f"Degradation: plain vs residual nets after {numbers['steps']} steps",
    )
    grads = LayerProfiles(
        {f"{k}, {depths[-1]} layers": v[GRAD_NORM] for k, v in numbers["grad_norm_at_init"].items()},
        ylabel="‖∂L/∂W_j‖ at the first step",
        title="Per-layer gradient norm at initialisation (last point: output layer)",
    )
    return {"main": main, "gradients": grads}


EXPERIMENT = Experiment(
    name="residual",
    seeds="003",
    summary="plain vs residual nets at increasing depth: training error (degradation), gradients, stochastic depth",
    claim=CLAIM,
    config=ResidualConfig,
    run=run,
)

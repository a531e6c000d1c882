"""Saturation and back-propagated gradients (seeds 001, 004; Glorot & Bengio 2010, Figs. 2 and 7).

1. A sigmoid net with the "standard" init U[−1/√n, 1/√n] and zero biases, trained by SGD with mini-batches of
   10: the mean and spread of every hidden layer's activations on a fixed set of 300 test examples, measured
   by gradwatch's watch (``act_mean``, ``act_std``) every few steps. Glorot & Bengio: the top hidden layer is
   driven toward its lower saturation 0 early in training (the output then relies on its biases), while the
   lower layers stay around 0.5.
2. A tanh net at initialisation, standard init against the normalised (Xavier) init U[±√6/√(n_j + n_{j+1})]:
   normalised histograms of the back-propagated gradients ∂C/∂z of every hidden layer. In the linear regime
   Var ∂C/∂z_l = n·Var W · Var ∂C/∂z_{l+1}: n·Var W = 1/3 under the standard init (the spread shrinks by
   1/√3 per layer toward the input), 1 under the normalised one (it stays the same).

Deviations (budget): G&B used 1000-unit layers (Shapeset, MNIST, CIFAR-10) and 4 (sigmoid) / 5 (tanh) hidden
layers; here the widths default to 300 on ``digits`` (or MNIST), and training is a few
hundred to a few thousand steps, not the paper's millions: the top layer's descent toward 0 is visible, its
recovery later in training is not reached.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field

from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.probing import activation_stats, backprop_gradients, single_threaded
from gradwatch.lab.experiments.trained import TrainedExperimentConfig
from gradwatch.stat_names import ACT_MEAN, ACT_STD

PROBE_EXAMPLES = 300  # G&B: activations of 300 fixed test examples
TOP_BELOW = 0.3  # the top layer's mean activation falls below this (from 0.5 at init)
LOWER_ABOVE = 0.45  # while every lower layer's stays above this
HIST_BINS = 41
INITS = {"standard U[±1/√n]": "glorot_standard", "normalised (Xavier) U[±√6/√(n_j+n_j+1)]": "xavier_uniform"}
CLAIM = (
    "With the standard init the top sigmoid layer is driven toward saturation at 0 while lower layers stay "
    "near 0.5, and back-propagated gradients shrink toward the input by about 1/√3 per tanh layer, while "
    "the normalised init keeps their spread the same across layers."
)


class SaturationConfig(TrainedExperimentConfig):
    """Settings of the saturation experiment; the CLI flags have the same names with dashes."""

    depth: int = Field(4, ge=2, description="hidden sigmoid layers of the training run (G&B Fig. 2: 4)")
    hist_depth: int = Field(5, ge=2, description="hidden tanh layers of the gradient histograms (G&B Fig. 7: 5)")
    width: int = Field(300, ge=1, description="units per hidden layer (G&B: 1000)")
    lr: float = Field(0.1, gt=0, description="SGD learning rate of the sigmoid run")
    batch_size: int = Field(10, ge=1, description="mini-batch size (G&B: 10)")
    epochs: int | None = Field(None, ge=1, description="epochs of the sigmoid run [default: 3 quick, 10 full]")
    probe_every: int = Field(20, ge=1, description="measure the activations every this many steps")


def _activations_over_training(cfg: SaturationConfig, width: int, epochs: int):
    from gradwatch import lab
    from gradwatch.lab.data import load_dataset

    probe = load_dataset(cfg.dataset_name, data_dir=cfg.data_dir, seed=cfg.seed).x_test[:PROBE_EXAMPLES]
    steps, means, stds = [], [], []

    def record(step: int, model: torch.nn.Module) -> None:
        if step % cfg.probe_every == 0 or step == 1:
            s = activation_stats(model, probe, (ACT_MEAN, ACT_STD))
            hidden = [i for i, name in enumerate(s["layers"]) if name.startswith("hidden")]
            steps.append(step - 1 if step == 1 else step)
            means.append([s[ACT_MEAN][i] for i in hidden])
            stds.append([s[ACT_STD][i] for i in hidden])

    run = lab.train(
        lab.Config(
            depth=cfg.depth,
            width=width,
            activation="sigmoid",
            init="glorot_standard",
            optimizer="sgd",
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            epochs=epochs,
            dataset=cfg.dataset,
            data_dir=cfg.data_dir,
            seed=cfg.seed,
        ),
        store=cfg.store,
        on_step=record,
    )
    return run, steps, np.array(means).T, np.array(stds).T  # [layers, probes]


def _gradient_histograms(cfg: SaturationConfig, width: int):
    """∂C/∂z per tanh hidden layer at init for each init: (stds per layer, histogram panels)."""
    from gradwatch.lab.data import load_dataset
    from gradwatch.lab.models import initialize, mlp

    data = load_dataset(cfg.dataset_name, data_dir=cfg.data_dir, seed=cfg.seed)
    x, y = data.x_train[:PROBE_EXAMPLES], data.y_train[:PROBE_EXAMPLES]
    stds, panels = {}, {}
    for label, init in INITS.items():
        model = mlp([data.n_features] + [width] * cfg.hist_depth + [data.n_classes], "tanh")
        initialize(model, init, generator=torch.Generator().manual_seed(cfg.seed))
        grads = backprop_gradients(model, x, y)
        stds[label] = [float(g.std()) for g in grads]
        r = float(np.percentile(np.abs(np.concatenate(grads)), 99.5))
        edges = np.linspace(-r, r, HIST_BINS + 1)
        panels[label] = {
            f"layer {i + 1}": (edges.tolist(), np.histogram(g, bins=edges, density=True)[0].tolist())
            for i, g in enumerate(grads)
        }
    return stds, panels


def _run(cfg: SaturationConfig, progress: Progress) -> ExperimentResult:
    with single_threaded():
        return _measure(cfg, progress)


def _measure(cfg: SaturationConfig, progress: Progress) -> ExperimentResult:
    from gradwatch.report.plots import LayerProfiles
    from gradwatch.report.plots_saturation import LayerBands, LayerHistograms

    width = cfg.width
    epochs = cfg.epochs or (3 if cfg.quick else 10)
    parts = list(progress.track(["sigmoid training", "tanh gradients"], "saturation", total=2))
    run, steps, means, stds = _activations_over_training(cfg, width, epochs)
    grad_stds, panels = _gradient_histograms(cfg, width)
    top, lower = means[-1], means[:-1]
    top_min, lower_min = float(top.min()), float(lower.min())
    saturates = top_min < TOP_BELOW and lower_min > LOWER_ABOVE
    predicted = {label: 1 / math.sqrt(3) if init == "glorot_standard" else 1.0 for label, init in INITS.items()}
    per_layer = {label: [a / b for a, b in zip(s, s[1:])] for label, s in grad_stds.items()}
    geo = {label: float(np.exp(np.mean(np.log(r)))) for label, r in per_layer.items()}
    std_label, norm_label = list(INITS)
    shrinks = abs(geo[std_label] / predicted[std_label] - 1) < 0.25 and abs(geo[norm_label] - 1) < 0.25
    evidence = (
        f"the top sigmoid layer's mean activation falls from {top[0]:.2f} to {top_min:.2f} while the lower "
        f"layers stay ≥ {lower_min:.2f}; per tanh layer toward the input the spread of ∂C/∂z changes by "
        f"×{geo[std_label]:.3f} with the standard init (predicted 1/√3 = {1 / math.sqrt(3):.3f}) and "
        f"×{geo[norm_label]:.3f} with the normalised init (predicted 1)"
    )
    act_rows = [
        [f"layer {i + 1}", means[i][0], stds[i][0], float(means[i].min()), means[i][-1], stds[i][-1]]
        for i in range(len(means))
    ]
    act_table = Table(
        f"sigmoid {cfg.depth}×{width}, standard init, SGD lr {cfg.lr}, batch {cfg.batch_size}, "
        f"{epochs} epochs on {cfg.dataset}; activations of {PROBE_EXAMPLES} test examples (G&B: 1000 "
        f"units, Shapeset)",
        ["hidden layer", "mean at init", "std at init", "lowest mean", "mean at end", "std at end"],
        act_rows,
    )
    grad_rows = [[f"layer {i + 1}", *[grad_stds[label][i] for label in INITS]] for i in range(cfg.hist_depth)]
    grad_rows.append(["per-layer factor (geometric mean)", geo[std_label], geo[norm_label]])
    grad_rows.append(["predicted (linear regime)", predicted[std_label], predicted[norm_label]])
    grad_table = Table(
        f"std of ∂C/∂z per tanh layer at init, {cfg.hist_depth}×{width}, {PROBE_EXAMPLES} examples",
        ["hidden layer", *INITS],
        grad_rows,
    )
    figures = {
        "main": LayerBands(
            steps,
            {f"layer {i + 1}": (means[i].tolist(), stds[i].tolist()) for i in range(len(means))},
            title=f"Sigmoid activations over training, standard init ({cfg.dataset})",
        ),
        "gradient-histograms": LayerHistograms(panels, title="Back-propagated gradients at init, tanh"),
        "gradient-spread": LayerProfiles(
            grad_stds, ylabel="std of ∂C/∂z", title="Spread of back-propagated gradients per tanh layer"
        ),
    }
    return ExperimentResult(
        name="saturation",
        claim=CLAIM,
        holds=saturates and shrinks and len(parts) == 2,
        evidence=evidence,
        numbers={
            "steps": steps,
            ACT_MEAN: means.tolist(),
            ACT_STD: stds.tolist(),
            "top_min_mean": top_min,
            "lower_min_mean": lower_min,
            "grad_std": grad_stds,
            "grad_factor_per_layer": per_layer,
            "grad_factor_geomean": geo,
            "grad_factor_predicted": predicted,
            "train_accuracy": run.metric("accuracy").tolist(),
            "width": width,
            "epochs": epochs,
        },
        config=cfg.to_dict(),
        tables=[act_table, grad_table],
        figures=figures,
        run_ids=[run.id],
    )


EXPERIMENT = Experiment(
    name="saturation",
    seeds="001, 004",
    summary="activation mean/spread per sigmoid layer over training; back-propagated gradient histograms, "
    "standard vs Xavier init (Glorot & Bengio 2010)",
    claim=CLAIM,
    config=SaturationConfig,
    run=_run,
)

"""Greedy layer-wise pretraining (seed 000, remedy f; Hinton & Salakhutdinov 2006, Bengio et al. 2007).

A deep sigmoid net trained from random weights by SGD sits at chance for a long time (its lower layers get tiny
gradients, seed 001's paralysis). Pretraining each hidden layer in turn as the encoder of an autoencoder on
the output of the layers below (:mod:`gradwatch.lab.pretrain`: untied linear decoder, squared error, Adam) gives
the net useful features before any label is seen; the whole net is then fine-tuned with the same SGD steps as
the unpretrained one.

Deviations: Bengio et al. pretrained with RBMs or autoencoders for many epochs on MNIST; here autoencoders with
Adam for ``pretrain_epochs`` epochs per layer, on the 8×8 digits (``--quick`` and without the MNIST files) or on
MNIST. The unlabelled pretraining uses the same training images as the fine-tuning.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gradwatch import lab
from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.trained import (
    TrainedExperimentConfig,
    accuracy_curve,
    error_rate,
    first_step_layer_norms,
    open_store,
    training_config,
)

CLAIM = (
    "Greedy layer-wise autoencoder pretraining lets a deep sigmoid net that plain SGD leaves near chance "
    "reach a far higher accuracy with the same fine-tuning steps."
)
FULL_STEPS, QUICK_STEPS = 5000, 400
FULL_PRETRAIN_EPOCHS, QUICK_PRETRAIN_EPOCHS = 20, 5
ACCURACY_MARGIN = 0.15  # pretrained final training accuracy must beat the unpretrained one by this much


class PretrainingConfig(TrainedExperimentConfig):
    """Settings of the pretraining experiment; the CLI flags have the same names with dashes."""

    depth: int = Field(5, ge=1, description="hidden layers")
    width: int = Field(100, ge=1, description="units per hidden layer")
    activation: str = Field("sigmoid", description="hidden activation")
    init: str = Field("xavier_uniform", description="random init of both nets (before pretraining)")
    lr: float = Field(0.1, gt=0, description="fine-tuning SGD (momentum 0.9) learning rate")
    steps: int | None = Field(
        None, ge=1, description=f"fine-tuning steps [default: {FULL_STEPS}; {QUICK_STEPS} with --quick]"
    )
    batch_size: int = Field(32, ge=1, description="examples per step (fine-tuning and pretraining)")
    pretrain_epochs: int | None = Field(
        None,
        ge=1,
        description=f"autoencoder epochs per layer [default: "
        f"{FULL_PRETRAIN_EPOCHS}; {QUICK_PRETRAIN_EPOCHS} "
        "with --quick]",
    )
    pretrain_lr: float = Field(1e-2, gt=0, description="Adam learning rate of the autoencoders")


def run(cfg: PretrainingConfig, progress: Progress) -> ExperimentResult:
    steps = cfg.steps or (QUICK_STEPS if cfg.quick else FULL_STEPS)
    epochs = cfg.pretrain_epochs or (QUICK_PRETRAIN_EPOCHS if cfg.quick else FULL_PRETRAIN_EPOCHS)
    base = training_config(
        cfg,
        steps,
        depth=cfg.depth,
        width=cfg.width,
        activation=cfg.activation,
        init=cfg.init,
        optimizer="momentum",
        lr=cfg.lr,
        pretrain_epochs=epochs,
        pretrain_lr=cfg.pretrain_lr,
    )
    runs = {}
    with open_store(cfg) as store:
        for label, mode in progress.track(
            [("random init", "none"), ("pretrained", "autoencoder")], "pretraining: training", total=2
        ):
            runs[label] = lab.train(base, store=store, pretrain=mode)
    grads = {label: first_step_layer_norms(r) for label, r in runs.items()}
    numbers: dict[str, Any] = {
        "dataset": runs["pretrained"].source,
        "steps": steps,
        "pretrain_epochs": epochs,
        "train_accuracy": {label: 1 - error_rate(r) for label, r in runs.items()},
        "test_accuracy": {label: float(r.final["test_accuracy"]) for label, r in runs.items()},
        "test_accuracy_curve": {label: dict(zip(("steps", "values"), accuracy_curve(r))) for label, r in runs.items()},
        "grad_norm_first_step": {label: {"layers": n, "values": g} for label, (n, g) in grads.items()},
        "first_over_output_grad": {label: g[0] / g[-1] for label, (_, g) in grads.items()},
        "reconstruction": [r.to_dict() for r in runs["pretrained"].pretraining],
    }
    acc = numbers["train_accuracy"]
    holds = acc["pretrained"] > acc["random init"] + ACCURACY_MARGIN and all(
        r["error_after"] < r["error_before"] for r in numbers["reconstruction"]
    )
    ratio = numbers["first_over_output_grad"]
    evidence = (
        f"after {steps} fine-tuning steps the training accuracy is {acc['pretrained']:.3f} pretrained vs "
        f"{acc['random init']:.3f} from random weights (test {numbers['test_accuracy']['pretrained']:.3f} vs "
        f"{numbers['test_accuracy']['random init']:.3f}); at the first step ‖∂L/∂W_1‖/‖∂L/∂W_out‖ is "
        f"{ratio['pretrained']:.2g} vs {ratio['random init']:.2g}"
    )
    net = f"{cfg.depth}×{cfg.width} {cfg.activation}, {cfg.init}, SGD+momentum lr {cfg.lr:g}, batch {cfg.batch_size}"
    table = Table(
        f"{numbers['dataset']}; {net}; {steps} fine-tuning steps; seed {cfg.seed}",
        ["net", "train acc", "test acc", "‖∂L/∂W_1‖ / ‖∂L/∂W_out‖ at step 1"],
        [[label, acc[label], numbers["test_accuracy"][label], ratio[label]] for label in runs],
    )
    recon = Table(
        f"Autoencoder pretraining, {epochs} epochs per layer (Adam lr {cfg.pretrain_lr:g}): mean squared "
        "reconstruction error of each layer's input",
        ["layer", "before", "after"],
        [[r["layer"], r["error_before"], r["error_after"]] for r in numbers["reconstruction"]],
    )
    return ExperimentResult(
        name="pretraining",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=[table, recon],
        figures=_figures(cfg, numbers),
        run_ids=[r.id for r in runs.values()],
    )


def _figures(cfg: PretrainingConfig, numbers: dict) -> dict:
    from gradwatch.report.plots import Curves, LayerProfiles

    curves = numbers["test_accuracy_curve"]
    main = Curves(
        {label: (c["steps"], c["values"]) for label, c in curves.items()},
        xlabel="fine-tuning step",
        ylabel="test accuracy",
        hline=(0.1, "chance"),
        title=f"{cfg.depth}×{cfg.width} {cfg.activation}: with and without layer-wise pretraining",
    )
    grads = LayerProfiles(
        {label: g["values"] for label, g in numbers["grad_norm_first_step"].items()},
        ylabel="‖∂L/∂W_j‖ at the first fine-tuning step",
        title="Per-layer gradient norm (last point: output layer)",
    )
    return {"main": main, "gradients": grads}


EXPERIMENT = Experiment(
    name="pretraining",
    seeds="000",
    summary="deep sigmoid net with and without greedy layer-wise autoencoder pretraining (remedy f)",
    claim=CLAIM,
    config=PretrainingConfig,
    run=run,
)

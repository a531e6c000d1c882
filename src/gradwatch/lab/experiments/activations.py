"""Activation functions compared at the same depth (seeds 003, 004), and the dying ReLU (seed 004).

1. The same deep net (default 8 hidden layers) with each of sigmoid, tanh, relu, leaky_relu, prelu, elu, selu,
   softsign, the same init (``xavier_normal``: N(0, 1/n) for equal widths, LeCun's init that SELU assumes) and
   the same SGD: per-layer gradient norms at initialisation (the watch's step-0 ``grad_norm``), training loss
   per epoch, and the fraction of dead units (zero on every training example: the watch's ``act_dead``) at
   the end. max σ' = 1/4 for the sigmoid makes its gradients vanish toward the input; the others have
   max σ' ≥ 1.
2. Dying ReLU: at a large learning rate (default 0.5) a step can push a ReLU unit's pre-activation below 0 for
   every input; its gradient is then exactly 0 and it never recovers. LeakyReLU (slope α = 0.01 below 0) has
   the same problem step but no dead units: a negative unit still passes α of the gradient. Measured over two
   seeds. Not reproduced here: LeakyReLU does not also *train* well at this learning rate within the budget
   (both nets are mostly stuck), so the claim is about dead units only.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator

from gradwatch.errors import check_choice
from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.probing import activation_stats, layer_values_at, single_threaded
from gradwatch.lab.experiments.trained import TrainedExperimentConfig
from gradwatch.nn.init import INITS
from gradwatch.stat_names import ACT_DEAD, GRAD_NORM

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "softsign")
CHANCE = math.log(10)
SIGMOID_SPAN_ABOVE = 1e3  # sigmoid: last hidden / first hidden ‖∂C/∂θ‖ at init above this (vanishing)
OTHERS_SPAN_BELOW = 30.0  # every other activation: within this factor
DEAD_ABOVE = 0.2  # dying ReLU: mean dead fraction of the hidden layers above this
CLAIM = (
    "At the same depth the sigmoid's gradients vanish toward the input and its loss stays near chance while "
    "tanh, the ReLU family, ELU, SELU and softsign keep first-layer gradients within 30× of the last and "
    "train; at a large learning rate ReLU units die (zero on every input) and LeakyReLU units do not."
)


class ActivationsConfig(TrainedExperimentConfig):
    """Settings of the activations experiment; the CLI flags have the same names with dashes."""

    depth: int = Field(8, ge=2, description="hidden layers of every net")
    width: int | None = Field(None, ge=1, description="units per hidden layer [default: 64 quick, 128 full]")
    init: str = Field("xavier_normal", description="init of every net (gradwatch.nn.init names)")
    lr: float = Field(0.05, gt=0, description="SGD learning rate of the comparison")
    batch_size: int = Field(32, ge=1, description="examples per step")
    epochs: int | None = Field(None, ge=1, description="epochs of the comparison [default: 5 quick, 20 full]")
    dying_lr: float = Field(0.5, gt=0, description="the large SGD learning rate of the dying-ReLU runs")
    dying_depth: int = Field(6, ge=1, description="hidden layers of the dying-ReLU runs (He init)")

    @field_validator("init")
    @classmethod
    def _init(cls, v: str) -> str:
        return check_choice("init", v, INITS)


def _hidden(values: list[float], layers: list[str]) -> list[float]:
    return [v for v, name in zip(values, layers) if name.startswith("hidden")]


def _run(cfg: ActivationsConfig, progress: Progress) -> ExperimentResult:
    with single_threaded():
        return _measure(cfg, progress)


def _measure(cfg: ActivationsConfig, progress: Progress) -> ExperimentResult:
    from gradwatch import lab
    from gradwatch.report.plots import Curves, LayerProfiles

    width = cfg.width or (64 if cfg.quick else 128)
    epochs = cfg.epochs or (5 if cfg.quick else 20)
    data = lab.load_dataset(cfg.dataset_name, data_dir=cfg.data_dir, seed=cfg.seed)
    per_act, run_ids = {}, []
    for act in progress.track(ACTIVATIONS, "training one net per activation", total=len(ACTIVATIONS)):
        run = lab.train(
            lab.Config(
                depth=cfg.depth,
                width=width,
                activation=act,
                init=cfg.init,
                optimizer="sgd",
                lr=cfg.lr,
                batch_size=cfg.batch_size,
                epochs=epochs,
                dataset=cfg.dataset,
                data_dir=cfg.data_dir,
                seed=cfg.seed,
            ),
            store=cfg.store,
        )
        run_ids.append(run.id)
        _, grads = layer_values_at(run, GRAD_NORM, 0)
        dead = activation_stats(run.model, data.x_train, (ACT_DEAD,))
        per_act[act] = {
            "grad_norm_at_init": grads,
            "span": grads[-1] / grads[0],
            "train_loss": run.metric("train_loss").tolist(),
            "accuracy": run.final["accuracy"],
            "test_accuracy": run.final["test_accuracy"],
            "dead_fraction": _hidden(dead[ACT_DEAD], dead["layers"]),
        }
    dying: dict[str, list[dict[str, Any]]] = {}
    jobs = [(act, seed) for act in ("relu", "leaky_relu") for seed in (cfg.seed, cfg.seed + 1)]
    for act, seed in progress.track(jobs, "dying ReLU at a large learning rate", total=len(jobs)):
        run = lab.train(
            lab.Config(
                depth=cfg.dying_depth,
                width=width,
                activation=act,
                init="he_normal",
                optimizer="sgd",
                lr=cfg.dying_lr,
                batch_size=cfg.batch_size,
                epochs=epochs,
                dataset=cfg.dataset,
                data_dir=cfg.data_dir,
                seed=seed,
            ),
            store=cfg.store,
        )
        run_ids.append(run.id)
        dead = activation_stats(run.model, data.x_train, (ACT_DEAD,))
        frac = _hidden(dead[ACT_DEAD], dead["layers"])
        dying.setdefault(act, []).append(
            {"seed": seed, "dead_fraction": frac, "mean_dead": sum(frac) / len(frac), "accuracy": run.final["accuracy"]}
        )
    others = [a for a in ACTIVATIONS if a != "sigmoid"]
    sig = per_act["sigmoid"]
    vanishes = sig["span"] > SIGMOID_SPAN_ABOVE and all(per_act[a]["span"] < OTHERS_SPAN_BELOW for a in others)
    sig_stalls = sig["train_loss"][-1] > 0.95 * CHANCE
    others_train = all(per_act[a]["train_loss"][-1] < sig["train_loss"][-1] for a in others)
    relu_dead = min(d["mean_dead"] for d in dying["relu"])
    leaky_dead = max(d["mean_dead"] for d in dying["leaky_relu"])
    dies = relu_dead > DEAD_ABOVE and leaky_dead == 0.0
    worst_other = max(others, key=lambda a: per_act[a]["span"])
    evidence = (
        f"at init the sigmoid's last hidden layer gets {sig['span']:.3g}× the gradient of its first (largest "
        f"span among the others: {worst_other} {per_act[worst_other]['span']:.3g}×); after {epochs} epochs the "
        f"sigmoid's training loss is {sig['train_loss'][-1]:.3f} (ln 10 = {CHANCE:.3f}), the others' "
        f"{min(per_act[a]['train_loss'][-1] for a in others):.3f}–"
        f"{max(per_act[a]['train_loss'][-1] for a in others):.3f}; "
        f"at lr {cfg.dying_lr} ≥ {relu_dead:.0%} of ReLU units are dead on both seeds, "
        f"{leaky_dead:.0%} of LeakyReLU units"
    )
    rows = [
        [
            a,
            p["grad_norm_at_init"][0],
            p["grad_norm_at_init"][-1],
            p["span"],
            p["train_loss"][-1],
            p["accuracy"],
            p["test_accuracy"],
            sum(p["dead_fraction"]) / len(p["dead_fraction"]),
        ]
        for a, p in per_act.items()
    ]
    table = Table(
        f"{cfg.depth}×{width} nets on {data.source}; init {cfg.init}; SGD lr {cfg.lr}, batch "
        f"{cfg.batch_size}, {epochs} epochs; seed {cfg.seed}",
        [
            "activation",
            "‖∂C/∂θ‖ layer 1 at init",
            "‖∂C/∂θ‖ last hidden at init",
            "last / first",
            "final train loss",
            "train accuracy",
            "test accuracy",
            "dead units at end",
        ],
        rows,
    )
    dying_rows = [
        [a, d["seed"], d["mean_dead"], max(d["dead_fraction"]), d["accuracy"]] for a, ds in dying.items() for d in ds
    ]
    dying_table = Table(
        f"dying ReLU: {cfg.dying_depth}×{width}, He init, SGD lr {cfg.dying_lr}, {epochs} epochs",
        ["activation", "seed", "dead units (mean over layers)", "worst layer", "train accuracy"],
        dying_rows,
    )
    figures = {
        "main": LayerProfiles(
            {a: p["grad_norm_at_init"] for a, p in per_act.items()},
            ylabel="‖∂C/∂θ‖ of the layer at init",
            title=f"Per-layer gradients at init, {cfg.depth} hidden layers, {cfg.init}",
        ),
        "training": Curves(
            {a: (list(range(1, epochs + 1)), p["train_loss"]) for a, p in per_act.items()},
            xlabel="epoch",
            ylabel="training loss (cross-entropy, nats)",
            title="Training curves by activation",
            hline=(CHANCE, "chance, ln 10"),
        ),
        "dying": LayerProfiles(
            {f"{a}, seed {d['seed']}": d["dead_fraction"] for a, ds in dying.items() for d in ds},
            ylabel="fraction of dead units",
            logy=False,
            title=f"Dead units after training at lr {cfg.dying_lr}",
        ),
    }
    return ExperimentResult(
        name="activations",
        claim=CLAIM,
        holds=vanishes and sig_stalls and others_train and dies,
        evidence=evidence,
        numbers={"activations": per_act, "dying": dying, "width": width, "epochs": epochs, "chance": CHANCE},
        config=cfg.to_dict(),
        tables=[table, dying_table],
        figures=figures,
        run_ids=run_ids,
    )


EXPERIMENT = Experiment(
    name="activations",
    seeds="003, 004",
    summary="8 activations at the same depth: per-layer gradients at init, training curves, dead units; dying ReLU",
    claim=CLAIM,
    config=ActivationsConfig,
    run=_run,
)

"""Learning speed per layer (seed 000, after Nielsen, *Neural Networks and Deep Learning*, ch. 5).

Nielsen's setting, reproduced exactly where our data allow: ``network2.py`` nets of sigmoid units everywhere
(the outputs too), the cross-entropy cost C = −(1/n) Σ_x Σ_j [y_j ln a_j + (1−y_j) ln(1−a_j)] + (λ/2n) Σ w²,
weights N(0, 1/n_in), biases N(0, 1). The speed of layer l is ‖∂C/∂b^l‖ (biases carry no penalty, so this is
∂C₀/∂b), averaged over the first 1,000 training images; it is read by gradwatch's watch (``grad_norm``
restricted to the biases) at every step of full-batch gradient descent (η = 0.1, λ = 5.0) for 2, 3 and 4
hidden layers of 30 units. Nielsen reports [0.012, 0.060] at init for two hidden layers and
[0.003, 0.017, 0.070, 0.285] for four: the first hidden layer is always the slowest.

Accuracy against depth: Nielsen trains 1–4 hidden layers of 30 for 30 epochs, mini-batch 10, η = 0.1, λ = 5.0
on 50,000 MNIST images and gets 96.48, 96.90, 96.57, 96.53 %: depth barely helps. Here: MNIST when its files
are found (only the 10k t10k set ships with this project, split 8,000 / 2,000), the embedded ``digits``
(8×8, 1,437 / 360) otherwise and in quick mode. lab.Config has no N(0, 1) biases, N(0, 1/n_in) weights or
sigmoid-output cost, so this experiment trains with its own 20-line gradient-descent loop; the watch and the
run store are the lab's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field

from gradwatch.lab.data import load_dataset
from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.probing import single_threaded
from gradwatch.lab.experiments.trained import TrainedExperimentConfig
from gradwatch.lab.models import linear_layers, mlp
from gradwatch.stat_names import GRAD_NORM

NIELSEN_AT_INIT = {2: [0.012, 0.060], 3: [0.012, 0.060, 0.283], 4: [0.003, 0.017, 0.070, 0.285]}
NIELSEN_ACCURACY = {1: 0.9648, 2: 0.9690, 3: 0.9657, 4: 0.9653}
SPEED_IMAGES = 1000
DEPTHS = (2, 3, 4)
CLAIM = (
    "In Nielsen's sigmoid nets the first hidden layer learns slowest: ‖∂C/∂b‖ grows from the first hidden "
    "layer to the last at initialisation, and averaged over training it is smallest in layer 1."
)


class LearningSpeedConfig(TrainedExperimentConfig):
    """Settings of the learning-speed experiment; the CLI flags have the same names with dashes."""

    width: int = Field(30, ge=1, description="units per hidden layer")
    eta: float = Field(0.1, gt=0, description="learning rate η")
    lmbda: float = Field(5.0, ge=0, description="L2 strength λ (the penalty is λ/2n Σw², n = training images)")
    speed_epochs: int | None = Field(
        None, ge=1, description="full-batch GD epochs on 1,000 images [default: 100 quick, 500 full]"
    )
    accuracy_epochs: int | None = Field(
        None, ge=1, description="epochs of the accuracy-vs-depth runs [default: 10 quick, 30 full]"
    )
    mini_batch: int = Field(10, ge=1, description="mini-batch size of the accuracy-vs-depth runs")


def nielsen_net(sizes: list[int], generator: torch.Generator) -> torch.nn.Sequential:
    """``network2.py``'s default init: weights N(0, 1/n_in), biases N(0, 1); sigmoid hidden layers (the
    sigmoid of the output lives in :func:`nielsen_cost`)."""
    model = mlp(sizes, "sigmoid")
    with torch.no_grad():
        for _, m in linear_layers(model):
            m.weight.normal_(0.0, 1.0 / math.sqrt(m.in_features), generator=generator)
            m.bias.normal_(0.0, 1.0, generator=generator)
    return model


def nielsen_cost(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """C₀ = −(1/n) Σ_x Σ_j [y_j ln a_j + (1−y_j) ln(1−a_j)], a = σ(logits), y one-hot (sigmoid outputs)."""
    target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(y)


def l2_penalty(model: torch.nn.Module, lmbda: float, n: int) -> torch.Tensor | float:
    """(λ/2n) Σ w² over the weights (not the biases), as in network2.py."""
    return lmbda / (2 * n) * sum((m.weight**2).sum() for _, m in linear_layers(model))


def train_nielsen(
    model,
    x,
    y,
    *,
    eta: float,
    lmbda: float,
    epochs: int,
    batch: int,
    generator: torch.Generator,
    watch_biases: bool = False,
    on_epoch=None,
):
    """Gradient descent on C₀ + (λ/2n)Σw² (plain SGD: w ← (1 − ηλ/n)w − η∂C₀/∂w). With ``watch_biases`` a
    watch records ‖∂C/∂b‖ per layer at every step (step 0: at init); returns the watch's history or None."""
    from gradwatch.probe import watch

    n = len(x)
    opt = torch.optim.SGD(model.parameters(), lr=eta)
    w = watch(model, optimizer=opt, stats=[GRAD_NORM], param_names=("bias",)) if watch_biases else None
    try:
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=generator) if batch < n else torch.arange(n)
            for i in range(0, n, batch):
                idx = order[i : i + batch]
                opt.zero_grad(set_to_none=True)
                (nielsen_cost(model(x[idx]), y[idx]) + l2_penalty(model, lmbda, n)).backward()
                opt.step()
            if on_epoch is not None:
                on_epoch(epoch)
    finally:
        if w is not None:
            w.close()
    return None if w is None else w.history


@torch.no_grad()
def _accuracy(model, x, y) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def _load(cfg: LearningSpeedConfig):
    return load_dataset(cfg.dataset_name, data_dir=cfg.data_dir, seed=cfg.seed)


def _store(cfg: LearningSpeedConfig, settings: dict, history, metrics: dict) -> str:
    from gradwatch.lab.run import new_run_id
    from gradwatch.lab.watching import history_rows
    from gradwatch.store import RunStore

    run_id = new_run_id()
    with RunStore(cfg.store) as store:
        store.start_run(run_id, {"experiment": "learning-speed", **settings, "seed": cfg.seed})
        layers, rows = history_rows(history)
        store.add_epoch(run_id, metrics["epoch"], metrics, layers=layers, history=rows)
        store.finish_run(run_id, "completed", summary=metrics)
    return run_id


def _run(cfg: LearningSpeedConfig, progress: Progress) -> ExperimentResult:
    with single_threaded():
        return _measure(cfg, progress)


def _measure(cfg: LearningSpeedConfig, progress: Progress) -> ExperimentResult:
    from gradwatch.report.plots import Curves, LayerProfiles

    data = _load(cfg)
    speed_epochs = cfg.speed_epochs or (100 if cfg.quick else 500)
    acc_epochs = cfg.accuracy_epochs or (10 if cfg.quick else 30)
    x, y = data.x_train[:SPEED_IMAGES], data.y_train[:SPEED_IMAGES]
    speed, run_ids = {}, []
    for depth in progress.track(DEPTHS, "full-batch GD, ‖∂C/∂b‖ per layer", total=len(DEPTHS)):
        g = torch.Generator().manual_seed(cfg.seed)
        sizes = [data.n_features] + [cfg.width] * depth + [data.n_classes]
        model = nielsen_net(sizes, g)
        hist = train_nielsen(
            model, x, y, eta=cfg.eta, lmbda=cfg.lmbda, epochs=speed_epochs, batch=len(x), generator=g, watch_biases=True
        )
        norms = hist.stat(GRAD_NORM)[:, :depth]  # [steps, hidden layers]; the output layer is dropped
        speed[depth] = {
            "sizes": sizes,
            "at_init": norms[0].tolist(),
            "over_training": norms.T.tolist(),
            "mean_over_training": norms.mean(0).tolist(),
            "epochs_first_slowest": int((norms.argmin(1) == 0).sum()),
            "epochs": speed_epochs,
            "train_accuracy": _accuracy(model, x, y),
        }
        run_ids.append(
            _store(
                cfg,
                {"sizes": sizes, "eta": cfg.eta, "lmbda": cfg.lmbda, "batch": len(x)},
                hist,
                {"epoch": speed_epochs, "accuracy": speed[depth]["train_accuracy"]},
            )
        )
    accuracy = {}
    for depth in progress.track(range(1, 5), "accuracy against depth", total=4):
        g = torch.Generator().manual_seed(cfg.seed)
        model = nielsen_net([data.n_features] + [cfg.width] * depth + [data.n_classes], g)
        train_nielsen(
            model,
            data.x_train,
            data.y_train,
            eta=cfg.eta,
            lmbda=cfg.lmbda,
            epochs=acc_epochs,
            batch=cfg.mini_batch,
            generator=g,
        )
        accuracy[depth] = _accuracy(model, data.x_test, data.y_test)
    deepest = speed[max(DEPTHS)]
    monotone = all(all(a < b for a, b in zip(s["at_init"], s["at_init"][1:])) for s in speed.values())
    first_slowest = all(min(s["mean_over_training"]) == s["mean_over_training"][0] for s in speed.values())
    span = deepest["at_init"][-1] / deepest["at_init"][0]
    evidence = (
        f"at init ‖∂C/∂b‖ {'rises' if monotone else 'does not always rise'} toward the output in every net "
        f"({', '.join(f'{v:.3g}' for v in deepest['at_init'])} for 4 hidden layers, "
        f"{span:.3g}× from layer 1 to 4; Nielsen: 0.003 … 0.285); layer 1 is the slowest at "
        f"{sum(s['epochs_first_slowest'] for s in speed.values())} of "
        f"{sum(len(s['over_training'][0]) for s in speed.values())} recorded steps; test accuracy with 1–4 "
        f"hidden layers: {', '.join(f'{a:.3f}' for a in accuracy.values())}"
    )
    rows = [
        [
            d,
            *[f"{v:.3g}" for v in s["at_init"]],
            *[""] * (4 - d),
            s["epochs_first_slowest"],
            ", ".join(f"{v:g}" for v in NIELSEN_AT_INIT[d]),
        ]
        for d, s in speed.items()
    ]
    speed_table = Table(
        f"{data.source}: ‖∂C/∂b‖ per hidden layer at init over {len(x)} images; seed {cfg.seed}",
        [
            "hidden layers",
            "layer 1",
            "layer 2",
            "layer 3",
            "layer 4",
            f"steps (of {speed_epochs}) layer 1 slowest",
            "Nielsen (MNIST)",
        ],
        rows,
    )
    acc_table = Table(
        f"test accuracy after {acc_epochs} epochs, mini-batch {cfg.mini_batch}, η {cfg.eta}, "
        f"λ {cfg.lmbda}, {len(data.x_train)} training images (Nielsen: 30 epochs on 50,000)",
        ["hidden layers", "test accuracy", "Nielsen (MNIST)"],
        [[d, a, NIELSEN_ACCURACY[d]] for d, a in accuracy.items()],
    )
    steps = list(range(len(deepest["over_training"][0])))
    figures = {
        "main": Curves(
            {f"hidden layer {i + 1}": (steps, v) for i, v in enumerate(deepest["over_training"])},
            xlabel="epoch (full-batch gradient-descent step)",
            ylabel="‖∂C/∂b‖ of the layer",
            title=f"Speed of learning, [{', '.join(map(str, deepest['sizes']))}]",
            logy=True,
            layer_colours=True,
        ),
        "at-init": LayerProfiles(
            {f"{d} hidden layers": s["at_init"] for d, s in speed.items()},
            ylabel="‖∂C/∂b‖ at init",
            title="Speed of learning per hidden layer at init",
        ),
        "accuracy": Curves(
            {"test accuracy": (list(accuracy), list(accuracy.values()))},
            xlabel="hidden layers of 30",
            ylabel="test accuracy (fraction)",
            title="Accuracy against depth",
            markers=True,
        ),
    }
    return ExperimentResult(
        name="learning-speed",
        claim=CLAIM,
        holds=monotone and first_slowest,
        evidence=evidence,
        numbers={
            "dataset_source": data.source,
            "speed": {str(d): s for d, s in speed.items()},
            "test_accuracy_by_depth": {str(d): a for d, a in accuracy.items()},
            "nielsen_at_init": {str(d): v for d, v in NIELSEN_AT_INIT.items()},
            "nielsen_accuracy": {str(d): v for d, v in NIELSEN_ACCURACY.items()},
        },
        config=cfg.to_dict(),
        tables=[speed_table, acc_table],
        figures=figures,
        run_ids=run_ids,
    )


EXPERIMENT = Experiment(
    name="learning-speed",
    seeds="000",
    summary="‖∂C/∂b‖ per hidden layer at init and over training, Nielsen's 2–4 sigmoid layers; accuracy vs depth",
    claim=CLAIM,
    config=LearningSpeedConfig,
    run=_run,
)

"""Xavier against He initialisation in deep ReLU nets (seed 001; He, Zhang, Ren & Sun 2015, Fig. 3).

He et al. train a 22-layer and a 30-layer ReLU model with "Xavier" init (std √(1/n)) and with their own
(std √(2/n)): at 22 layers both converge and He's starts reducing the error earlier; at 30 layers Xavier's
"completely stalls". Each ReLU layer halves the signal's second moment under Xavier (½·n·(1/n) = ½), so after
30 layers the logits are ~2^-15 of their size under He and the loss sits at chance, ln 10.

Here (budget, not the paper's setup): plain fully connected ReLU nets of 22 and 30 hidden layers (the paper's
are conv nets) on the embedded ``digits`` (or MNIST), zero biases, SGD with momentum 0.9 at the same
learning rate for both inits. ``xavier_normal`` draws N(0, 2/(n_in + n_out)), which is std √(1/n) for the
equal-width hidden layers (all but the first and the output).
"""

from __future__ import annotations

import math

from pydantic import Field

from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.probing import first_step_reaching, layer_values_at, single_threaded
from gradwatch.lab.experiments.trained import TrainedExperimentConfig
from gradwatch.stat_names import GRAD_NORM

CHANCE = math.log(10)
STALL_MARGIN = 0.05  # "stays at chance": final training loss within 5 % of ln 10
TRAINS_BELOW = 0.7  # "trains": the training loss falls below 0.7·ln 10
START_BELOW = 0.9  # "starts reducing the error": first epoch with training loss below 0.9·ln 10
INITS = {"Xavier √(1/n)": "xavier_normal", "He √(2/n)": "he_normal"}
CLAIM = (
    "In a 30-layer ReLU net Xavier initialisation (std √(1/n)) leaves the training loss at chance while "
    "He initialisation (std √(2/n)) trains it, and at 22 layers He starts reducing the loss earlier."
)


class InitConfig(TrainedExperimentConfig):
    """Settings of the init experiment; the CLI flags have the same names with dashes."""

    shallow_depth: int = Field(22, ge=1, description="hidden ReLU layers of the net where both inits train")
    deep_depth: int = Field(30, ge=1, description="hidden ReLU layers of the net where Xavier stalls")
    width: int = Field(64, ge=1, description="units per hidden layer")
    lr: float = Field(0.01, gt=0, description="SGD learning rate (momentum 0.9), the same for both inits")
    batch_size: int = Field(64, ge=1, description="examples per step")
    epochs: int | None = Field(None, ge=1, description="passes over the training split [default: 12 quick, 40 full]")


def _run(cfg: InitConfig, progress: Progress) -> ExperimentResult:
    with single_threaded():
        return _measure(cfg, progress)


def _measure(cfg: InitConfig, progress: Progress) -> ExperimentResult:
    from gradwatch import lab
    from gradwatch.report.plots import Curves, LayerProfiles

    epochs = cfg.epochs or (12 if cfg.quick else 40)
    jobs = [(depth, label) for depth in (cfg.shallow_depth, cfg.deep_depth) for label in INITS]
    runs = {}
    for depth, label in progress.track(jobs, "training Xavier / He ReLU nets", total=len(jobs)):
        runs[depth, label] = lab.train(
            lab.Config(
                depth=depth,
                width=cfg.width,
                activation="relu",
                init=INITS[label],
                optimizer="momentum",
                lr=cfg.lr,
                batch_size=cfg.batch_size,
                epochs=epochs,
                dataset=cfg.dataset,
                data_dir=cfg.data_dir,
                seed=cfg.seed,
            ),
            store=cfg.store,
        )
    curves, at_init, per_config, rows = {}, {}, {}, []
    for (depth, label), run in runs.items():
        name = f"{depth} layers, {label}"
        loss = run.metric("train_loss").tolist()
        epochs_axis = run.metric("epoch").tolist()
        curves[name] = ([0] + epochs_axis, [CHANCE] + loss)
        _, grads = layer_values_at(run, GRAD_NORM, 0)
        at_init[name] = grads
        start = first_step_reaching(epochs_axis, loss, START_BELOW * CHANCE)
        per_config[name] = {
            "depth": depth,
            "init": INITS[label],
            "train_loss": loss,
            "accuracy": run.metric("accuracy").tolist(),
            "test_accuracy": run.final["test_accuracy"],
            "grad_norm_at_init": grads,
            "first_epoch_below_0.9_ln10": start,
        }
        rows.append(
            [
                depth,
                label,
                grads[0],
                grads[-1],
                grads[-1] / grads[0],
                loss[-1],
                min(loss),
                run.final["test_accuracy"],
                start,
            ]
        )
    x30, h30 = per_config[f"{cfg.deep_depth} layers, Xavier √(1/n)"], per_config[f"{cfg.deep_depth} layers, He √(2/n)"]
    x22, h22 = (
        per_config[f"{cfg.shallow_depth} layers, Xavier √(1/n)"],
        per_config[f"{cfg.shallow_depth} layers, He √(2/n)"],
    )
    stalls = abs(x30["train_loss"][-1] - CHANCE) <= STALL_MARGIN * CHANCE
    trains = min(h30["train_loss"]) < TRAINS_BELOW * CHANCE
    inf = math.inf
    earlier = (h22["first_epoch_below_0.9_ln10"] or inf) < (x22["first_epoch_below_0.9_ln10"] or inf)
    fmt = lambda e: "never" if e is None else f"epoch {e:g}"  # noqa: E731
    evidence = (
        f"after {epochs} epochs the {cfg.deep_depth}-layer Xavier net's training loss is "
        f"{x30['train_loss'][-1]:.3f} (ln 10 = {CHANCE:.3f}) while He's reaches {min(h30['train_loss']):.3f}; "
        f"at {cfg.shallow_depth} layers the loss first drops below 0.9·ln 10 at "
        f"{fmt(h22['first_epoch_below_0.9_ln10'])} "
        f"with He and {fmt(x22['first_epoch_below_0.9_ln10'])} with Xavier"
    )
    table = Table(
        f"ReLU MLPs of width {cfg.width} on {cfg.dataset}; SGD momentum 0.9, lr {cfg.lr}, batch "
        f"{cfg.batch_size}, {epochs} epochs, seed {cfg.seed} (He et al. 2015 used conv nets on ImageNet)",
        [
            "hidden layers",
            "init",
            "‖∂C/∂θ‖ layer 1 at init",
            "‖∂C/∂θ‖ last hidden at init",
            "last / first",
            "final train loss",
            "min train loss",
            "test accuracy",
            "first epoch loss < 0.9·ln 10",
        ],
        rows,
    )
    title = f"ReLU nets on {cfg.dataset}: Xavier vs He init"
    figures = {
        "main": Curves(
            curves,
            xlabel="epoch",
            ylabel="training loss (cross-entropy, nats)",
            title=title,
            hline=(CHANCE, "chance, ln 10"),
        ),
        "gradients": LayerProfiles(
            at_init, ylabel="‖∂C/∂θ‖ of the layer at init", title="Per-layer gradient norm at initialisation"
        ),
    }
    return ExperimentResult(
        name="init",
        claim=CLAIM,
        holds=stalls and trains and earlier,
        evidence=evidence,
        numbers={
            "chance": CHANCE,
            "epochs": epochs,
            "runs": per_config,
            "xavier_deep_stalls": stalls,
            "he_deep_trains": trains,
            "he_shallow_starts_earlier": earlier,
        },
        config=cfg.to_dict(),
        tables=[table],
        figures=figures,
        run_ids=[r.id for r in runs.values()],
    )


EXPERIMENT = Experiment(
    name="init",
    seeds="001",
    summary="22- and 30-layer ReLU nets with Xavier and He init: deeper Xavier stalls, He trains (He et al. 2015)",
    claim=CLAIM,
    config=InitConfig,
    run=_run,
)

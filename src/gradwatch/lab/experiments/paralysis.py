"""Network paralysis (seed 001): mean |∂C/∂W| of every layer of a deep sigmoid net at initialisation.

Seed 001's table (841 inputs → 5 × 100 sigmoid → 26 classes) reads, from the first hidden layer to the output,
6.2e-8, 2.2e-6, 1.6e-5, 1.1e-4, 7e-4, 0.015: each layer nearer the input learns about 7× more slowly than the
next. The default here is the same net on ``digits`` (64 inputs, 10 classes), weights N(0, σ²) with
σ = 1/√300 ≈ 0.0577 — the spread of Glorot & Bengio's "standard" init U[±1/√n] for a 100-unit layer — and
zero biases. It gives ratios of about 7 between hidden layers and about 20 at the output, as the seed does.

"After training": the same net (same weights at the start) is then trained with :func:`gradwatch.lab.train`
(plain SGD, η = 0.1, mini-batches of 32 by default; ``--train-steps 0`` skips it) and the per-layer mean
|∂C/∂W| is measured again on the same batch. With plain SGD the net stays paralysed: the lower layers barely
move, the test accuracy stays at chance and the span between layer 1 and the output stays in the thousands;
``--optimizer adam`` (per-parameter step sizes) is the contrast that lifts it. The seed shows only the
initialisation table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from gradwatch.errors import check_choice
from gradwatch.lab.data import load_dataset
from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Figure, Progress, Table
from gradwatch.lab.experiments.net_config import NetExperimentConfig
from gradwatch.lab.models import initialize, linear_layers, mlp
from gradwatch.nn.init import INITS
from gradwatch.stat_names import GRAD_ABS_MEAN
from gradwatch.store.sqlite import DEFAULT_STORE

DEFAULT_INIT_STD = 1 / math.sqrt(300)
QUICK_TRAIN_STEPS = 200  # --quick trains at most this many steps
TRAINED_MIN_SPAN = 100  # "still paralysed after training": output over layer 1 stays above this
CLAIM = (
    "In a deep sigmoid network at initialisation, layers nearer the input get mean |gradient| orders of "
    "magnitude smaller than layers nearer the output (network paralysis)."
)
SEED_TABLE: dict[str, list[float]] = {
    "neurons": [100, 100, 100, 100, 100, 26],
    "mean_abs_grad": [6.2e-8, 2.2e-6, 1.6e-5, 1.1e-4, 7e-4, 0.015],
}
SEED_SPAN = SEED_TABLE["mean_abs_grad"][-1] / SEED_TABLE["mean_abs_grad"][0]


class ParalysisConfig(NetExperimentConfig):
    """Settings of the paralysis experiment; the CLI flags have the same names with dashes."""

    depth: int = Field(5, ge=1, description="number of hidden layers")
    width: int = Field(100, ge=1, description="units per hidden layer")
    init: str = Field("normal", description="normal, xavier_uniform, he_normal, ... (gradwatch.nn.init)")
    init_std: float = Field(DEFAULT_INIT_STD, gt=0, description="σ of the normal init")
    batch_size: int = Field(1000, ge=1, description="training examples the gradient is averaged over")
    train_steps: int = Field(
        500,
        ge=0,
        description=f"optimizer steps of the 'after training' run (0: skip it; --quick: at most {QUICK_TRAIN_STEPS})",
    )
    optimizer: Literal["sgd", "momentum", "nesterov", "adam"] = Field("sgd", description="optimizer of that run")
    lr: float = Field(0.1, gt=0, description="learning rate of that run")
    train_batch: int = Field(32, ge=1, description="mini-batch size of that run")
    store: str = Field(
        "",
        description="run store (SQLite file) to record the training run in (empty, the default: "
        f"not recorded; `gradwatch lab all` records it in its --store, e.g. "
        f"{DEFAULT_STORE})",
    )

    @field_validator("init")
    @classmethod
    def _init(cls, v: str) -> str:
        return check_choice("init", v, INITS)


@dataclass
class ParalysisResult:
    """Per-layer mean |∂C/∂W|, input side first (the seed's table)."""

    layers: list[str]
    neurons: list[int]
    mean_abs_grad: list[float]
    config: dict[str, Any]
    inputs: int = 0
    dataset_source: str = ""
    claim: str = field(default=CLAIM)

    @property
    def ratio_to_next(self) -> list[float | None]:
        """mean|grad| of the next layer (toward the output) over this layer's; None for the output."""
        g = self.mean_abs_grad
        return [g[i + 1] / g[i] if g[i] > 0 else math.inf for i in range(len(g) - 1)] + [None]

    @property
    def span(self) -> float:
        """Output layer's mean |grad| over the first hidden layer's: how many times slower layer 1 learns."""
        return self.mean_abs_grad[-1] / self.mean_abs_grad[0] if self.mean_abs_grad[0] > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "layers": self.layers,
            "neurons": self.neurons,
            "mean_abs_grad": self.mean_abs_grad,
            "ratio_to_next": self.ratio_to_next,
            "inputs": self.inputs,
            "dataset_source": self.dataset_source,
            "config": self.config,
            "seed_table": SEED_TABLE,
        }


def mean_abs_weight_grad(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[str, int, float]]:
    """One backward pass of the mean cross-entropy over (x, y); (layer path, units, mean |∂C/∂W|) per layer.

    The numbers are the watch's ``grad_abs_mean`` restricted to the weights (``param_names=("weight",)``).
    """
    from gradwatch.probe import watch

    model.zero_grad(set_to_none=True)
    with watch(model, stats=[GRAD_ABS_MEAN], param_names=("weight",)) as w:
        F.cross_entropy(model(x), y).backward()
        w.step()
    means = w.history.stat(GRAD_ABS_MEAN)[0].tolist()
    units = {name: m.out_features for name, m in linear_layers(model)}
    return [(name, units[name], v) for name, v in zip(w.history.layers, means)]


def prepare(cfg: ParalysisConfig):
    """The initialised model, the batch it is measured on, and the dataset: ``(model, x, y, data)``.

    Deterministic in ``cfg.seed``: the same config always gives the same weights and batch.
    """
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randperm(len(data.x_train), generator=g)[: cfg.batch_size]
    model = mlp([data.n_features] + [cfg.width] * cfg.depth + [data.n_classes], cfg.activation)
    initialize(model, cfg.init, init_std=cfg.init_std, generator=g)
    return model, data.x_train[idx], data.y_train[idx], data


def run(config: ParalysisConfig | None = None, **overrides: Any) -> ParalysisResult:
    """Build the network, initialise it and measure the per-layer mean |∂C/∂W| over one batch."""
    cfg = config if config is not None else ParalysisConfig(**overrides)
    model, x, y, data = prepare(cfg)
    rows = mean_abs_weight_grad(model, x, y)
    return ParalysisResult(
        layers=[r[0] for r in rows],
        neurons=[r[1] for r in rows],
        mean_abs_grad=[r[2] for r in rows],
        config=cfg.to_dict(),
        inputs=data.n_features,
        dataset_source=data.source,
    )


@dataclass
class TrainedResult:
    """Per-layer mean |∂C/∂W| of the net after ``steps`` optimizer steps, on the batch of :func:`prepare`."""

    run_id: str
    steps: int
    test_accuracy: float
    mean_abs_grad: list[float]
    model: torch.nn.Module | None = field(repr=False, default=None)

    @property
    def span(self) -> float:
        return self.mean_abs_grad[-1] / self.mean_abs_grad[0] if self.mean_abs_grad[0] > 0 else math.inf


def train_and_measure(cfg: ParalysisConfig) -> TrainedResult:
    """Train the net of ``cfg`` with :func:`gradwatch.lab.train` (stored in ``cfg.store``) and measure it again.

    The lab draws the initial weights from the same distribution and seed (not the very same tensors as
    :func:`prepare`); the gradient is measured on the same batch as at initialisation.
    """
    from gradwatch import lab

    steps = min(cfg.train_steps, QUICK_TRAIN_STEPS) if cfg.quick else cfg.train_steps
    lab_cfg = lab.Config(
        sizes=[cfg.width] * cfg.depth,
        activation=cfg.activation,
        init=cfg.init,
        init_std=cfg.init_std,
        dataset=cfg.dataset,
        data_dir=cfg.data_dir,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        batch_size=cfg.train_batch,
        epochs=10**6,
        steps=steps,
        seed=cfg.seed,
        watch_every=max(1, steps // 50),
    )
    trained = lab.train(lab_cfg, store=cfg.store or None)
    _, x, y, _ = prepare(cfg)
    grads = [v for _, _, v in mean_abs_weight_grad(trained.model, x, y)]
    return TrainedResult(
        trained.id,
        int(trained.final.get("step", steps)),
        float(trained.final.get("test_accuracy", math.nan)),
        grads,
        trained.model,
    )


def _as_experiment(cfg: ParalysisConfig, progress: Progress) -> ExperimentResult:
    r = run(cfg)
    trained: TrainedResult | None = None
    if cfg.train_steps > 0:
        trained = train_and_measure(next(iter(progress.track([cfg], "training the same net", total=1))))
    g = r.mean_abs_grad
    monotone = all(a < b for a, b in zip(g, g[1:]))
    seed_col = SEED_TABLE["mean_abs_grad"] if len(g) == len(SEED_TABLE["mean_abs_grad"]) else [None] * len(g)
    rows = [["input", r.inputs, None, None, None]] + [
        [name, n, v, None if q is None else round(q, 1), s]
        for name, n, v, q, s in zip(r.layers, r.neurons, g, r.ratio_to_next, seed_col)
    ]
    net = f"{r.inputs} → {cfg.depth}×{cfg.width} {cfg.activation} → {r.neurons[-1]}"
    init = f"{cfg.init}" + (f" (σ = {cfg.init_std:.4g})" if cfg.init == "normal" else "")
    table = Table(
        f"{r.dataset_source}; net {net}; init {init}; batch {cfg.batch_size}; seed {cfg.seed}",
        ["layer", "neurons", "mean |∂C/∂W|", "next / this", "seed 001 (841→5×100→26)"],
        rows,
    )
    evidence = (
        f"mean |∂C/∂W| {'rises monotonically' if monotone else 'does not rise monotonically'} from "
        f"{g[0]:.2g} ({r.layers[0]}) to {g[-1]:.2g} ({r.layers[-1]}): the first hidden layer gets "
        f"{r.span:.3g}× less gradient than the output layer (seed 001: {SEED_SPAN:.3g}×)"
    )
    from gradwatch.report.plots import LayerGradientBars

    title = f"{cfg.depth}×{cfg.width} {cfg.activation}, init {cfg.init} — {cfg.dataset}"
    numbers = {k: v for k, v in r.to_dict().items() if k not in ("config", "claim")}
    figures: dict[str, Figure] = {"main": LayerGradientBars(r.layers, g, title=title)}
    tables, holds = [table], monotone and r.span > 100
    if trained is not None:
        t = trained.mean_abs_grad
        how = f"{trained.steps} {cfg.optimizer} steps (η = {cfg.lr:g}, batch {cfg.train_batch})"
        still = all(a < b for a, b in zip(t, t[1:])) and trained.span > TRAINED_MIN_SPAN
        evidence += (
            f"; after {how} the test accuracy is {trained.test_accuracy:.3f} and layer 1 still gets "
            f"{trained.span:.3g}× less gradient than the output" + ("" if still else " — the paralysis is lifted")
        )
        stored = f" (run {trained.run_id} in {cfg.store})" if cfg.store else ""
        tables.append(
            Table(
                f"The same net after {how}, measured on the same batch{stored}",
                ["layer", "mean |∂C/∂W| at init", "after training", "after / at init"],
                [[name, a, b, b / a if a > 0 else None] for name, a, b in zip(r.layers, g, t)],
            )
        )
        numbers["trained"] = {
            "mean_abs_grad": t,
            "span": trained.span,
            "steps": trained.steps,
            "optimizer": cfg.optimizer,
            "lr": cfg.lr,
            "test_accuracy": trained.test_accuracy,
            "still_paralysed": still,
            "run_id": trained.run_id,
        }
        from gradwatch.report.plots import LayerProfiles

        figures["trained"] = LayerProfiles(
            {"at initialisation": g, f"after {how}": t},
            ylabel="mean |∂C/∂W|",
            title=f"{title}: before and after training",
        )
        holds = holds and still
    return ExperimentResult(
        name="paralysis",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=tables,
        figures=figures,
        run_ids=[] if trained is None or not cfg.store else [trained.run_id],
    )


EXPERIMENT = Experiment(
    name="paralysis",
    seeds="001",
    summary="mean |∂C/∂W| per layer of a deep sigmoid net at initialisation (network paralysis)",
    claim=CLAIM,
    config=ParalysisConfig,
    run=_as_experiment,
)

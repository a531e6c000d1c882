"""Regularisation (seeds 001, 003, 004): under- and over-fitting, and three ways to fight over-fitting.

1. Polynomial fits of growing degree D (seed 004, after Fleuret's EE-559): y = sin(πx) + noise on a handful of
   points (``gradwatch.lab.tasks.polynomial``), the degree-D polynomial fitted by least squares. Training error
   falls with D; test error is U-shaped — too low a degree under-fits, too high a degree over-fits.
2. L2 strength sweep on the highest degree (seed 004's ℓ = (y − f)² + ρ Σ w_d², seed 001's R_L2 = ½ Σ w²):
   the objective is exactly the one ``lab.train`` gives a linear model with ``l2 = λ`` and mse loss,
   mean (y − f)² + λ/2 Σ_{d≥1} w_d² (intercept unpenalised), minimised here in closed form in float64.
   Test error is U-shaped in λ: λ = 0 over-fits, a very large λ flattens the fit (under-fits).
3. An over-parameterised ReLU net (2 × 256 units, ~70k weights for 100 training examples) on teacher–student
   regression with label noise σ = 1, trained with Adam by ``lab.train``: without a remedy it drives the training
   loss to ~0 and its test loss well above the noise floor σ² = 1; dropout p = 0.4 (seed 001's recommendation)
   and early stopping on a validation split (seed 003) both end at a lower test loss. Each configuration runs on
   several seeds (``--seeds``); the claim is checked on their mean and on every seed.

Our budget is smaller than a paper's: the network part uses a synthetic teacher instead of MNIST so the
over-fitting is strong and fast to show.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator

from gradwatch.errors import ConfigError
from gradwatch.lab.experiments.base import Experiment, ExperimentConfig, ExperimentResult, Progress, Table
from gradwatch.lab.tasks import polynomial

CLAIM = (
    "Training error falls with model capacity while test error is U-shaped (under- then over-fitting), "
    "and L2, dropout p = 0.4 and early stopping each lower the test error of an over-fitting model."
)
DEFAULT_DEGREES = [1, 2, 3, 5, 7, 9, 12, 15]
DEFAULT_L2 = [1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
N_CURVE = 200  # points on which each fitted polynomial is drawn
N_NET_TEST = 1000  # fresh teacher–student examples the nets are tested on


class RegularizationConfig(ExperimentConfig):
    """Settings of the regularisation experiment; the CLI flags have the same names with dashes."""

    n_points: int = Field(20, ge=3, description="training points of the polynomial fits")
    n_test_points: int = Field(1000, ge=10, description="test points of the polynomial fits")
    poly_noise: float = Field(0.2, ge=0, description="σ of the noise on sin(πx) for the polynomial fits")
    degrees: list[int] = Field(DEFAULT_DEGREES, description="polynomial degrees D to fit (each < n-points)")
    l2: list[float] = Field(DEFAULT_L2, description="L2 strengths λ swept on the highest degree (plus λ = 0)")
    width: int = Field(256, ge=1, description="units per hidden layer of the over-parameterised net")
    depth: int = Field(2, ge=1, description="hidden layers of the over-parameterised net")
    activation: str = Field("relu", description="activation of the net")
    dropout: float = Field(0.4, gt=0, lt=1, description="dropout probability p (seed 001 recommends 0.4)")
    patience: int = Field(20, ge=1, description="early stopping: epochs without a better validation loss")
    n_train: int = Field(200, ge=10, description="teacher–student examples, half held out for validation")
    net_noise: float = Field(1.0, ge=0, description="σ of the teacher–student label noise")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of the net")
    epochs: int = Field(150, ge=1, description="epochs of the net [quick: 100]")
    seeds: int = Field(3, ge=1, description="seeds per net configuration [quick: 2]")
    store: str = Field("gradwatch-runs/runs.sqlite", description="run store the net runs are recorded in")

    @field_validator("degrees")
    @classmethod
    def _degrees(cls, v: list[int]) -> list[int]:
        if len(v) < 3 or any(d < 1 for d in v) or sorted(set(v)) != v:
            raise ConfigError("degrees", v, "at least 3 increasing degrees ≥ 1")
        return v

    @field_validator("l2")
    @classmethod
    def _l2(cls, v: list[float]) -> list[float]:
        if len(v) < 2 or any(x <= 0 for x in v) or sorted(set(v)) != v:
            raise ConfigError("l2", v, "at least 2 increasing strengths > 0 (λ = 0 is always included)")
        return v


# ---- polynomial fits --------------------------------------------------------------------------------------------


def polynomial_features(x: np.ndarray, degree: int) -> np.ndarray:
    """[n, D] = (x, x², …, x^D), the lab's polynomial features."""
    return x[:, None] ** np.arange(1, degree + 1)[None, :]


def fit_polynomial(x: np.ndarray, y: np.ndarray, degree: int, l2: float = 0.0) -> np.ndarray:
    """Coefficients (w₀, w₁, …, w_D) minimising mean (y − f)² + λ/2 Σ_{d≥1} w_d² (w₀ unpenalised), float64.

    Solved on features centred over the training points (so the intercept separates), by least squares on the
    normal equations augmented with √(nλ/2)·I rows — stable even when the Vandermonde matrix is ill-conditioned.
    """
    f = polynomial_features(x.astype(np.float64), degree)
    mean_f, mean_y = f.mean(0), y.mean()
    fc, yc = f - mean_f, y - mean_y
    if l2 > 0:
        fc = np.vstack([fc, np.sqrt(len(x) * l2 / 2) * np.eye(degree)])
        yc = np.concatenate([yc, np.zeros(degree)])
    w = np.linalg.lstsq(fc, yc, rcond=None)[0]
    return np.concatenate([[mean_y - mean_f @ w], w])


def evaluate_polynomial(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return coef[0] + polynomial_features(x, len(coef) - 1) @ coef[1:]


def _mse(coef: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((evaluate_polynomial(coef, x) - y) ** 2))


def _poly_data(cfg: RegularizationConfig) -> tuple[np.ndarray, ...]:
    """Training and test points of sin(πx) + noise from the lab's generator (one seed, two draws)."""
    rng = np.random.default_rng([cfg.seed, 4])
    xtr, ytr = polynomial(cfg.n_points, 1, cfg.poly_noise, rng)
    xte, yte = polynomial(cfg.n_test_points, 1, cfg.poly_noise, rng)
    return xtr[:, 0], ytr[:, 0], xte[:, 0], yte[:, 0]


def polynomial_part(cfg: RegularizationConfig) -> dict[str, Any]:
    if cfg.degrees[-1] >= cfg.n_points:
        raise ConfigError("degrees", cfg.degrees, f"every degree must be < n_points = {cfg.n_points}")
    xtr, ytr, xte, yte = _poly_data(cfg)
    fits = {d: fit_polynomial(xtr, ytr, d) for d in cfg.degrees}
    top = cfg.degrees[-1]
    ridge = {lam: fit_polynomial(xtr, ytr, top, lam) for lam in [0.0] + cfg.l2}
    grid = np.linspace(-1, 1, N_CURVE)
    return {
        "train_points": {"x": xtr.tolist(), "y": ytr.tolist()},
        "degrees": cfg.degrees,
        "degree_train_mse": [_mse(fits[d], xtr, ytr) for d in cfg.degrees],
        "degree_test_mse": [_mse(fits[d], xte, yte) for d in cfg.degrees],
        "l2": [0.0] + cfg.l2,
        "l2_degree": top,
        "l2_train_mse": [_mse(ridge[lam], xtr, ytr) for lam in ridge],
        "l2_test_mse": [_mse(ridge[lam], xte, yte) for lam in ridge],
        "curves": {
            "x": grid.tolist(),
            "truth": np.sin(np.pi * grid).tolist(),
            "by_degree": {str(d): evaluate_polynomial(fits[d], grid).tolist() for d in cfg.degrees},
        },
        "noise_variance": cfg.poly_noise**2,
    }


# ---- the over-parameterised net -------------------------------------------------------------------------------

NET_ARMS = ("none", "dropout", "early_stopping")


def _net_config(cfg: RegularizationConfig, arm: str, seed: int, epochs: int):
    from gradwatch import lab

    return lab.Config(
        dataset="teacher_student",
        input_dim=10,
        n_train=cfg.n_train,
        n_test=N_NET_TEST,
        noise=cfg.net_noise,
        val_fraction=0.5,
        depth=cfg.depth,
        width=cfg.width,
        activation=cfg.activation,
        init="he_normal",
        optimizer="adam",
        lr=cfg.lr,
        batch_size=cfg.n_train // 2,
        epochs=epochs,
        seed=seed,
        dropout=cfg.dropout if arm == "dropout" else 0.0,
        early_stopping=cfg.patience if arm == "early_stopping" else None,
        watch_every=10,
    )


def net_part(cfg: RegularizationConfig, progress: Progress) -> tuple[dict[str, Any], list[str]]:
    """Train every arm on every seed; the test loss of the weights each arm ends with."""
    from gradwatch import lab
    from gradwatch.store import RunStore

    epochs = 100 if cfg.quick else cfg.epochs
    n_seeds = 2 if cfg.quick else cfg.seeds
    jobs = [(arm, cfg.seed + s) for s in range(n_seeds) for arm in NET_ARMS]
    out: dict[str, Any] = {
        arm: {"final_test_loss": [], "final_train_loss": [], "test_curve": [], "val_curve": [], "train_curve": []}
        for arm in NET_ARMS
    }
    out["early_stopping"]["best_epoch"] = []
    ids = []
    with RunStore(cfg.store) as store:
        for arm, seed in progress.track(jobs, "regularisation: nets", total=len(jobs)):
            run = lab.train(_net_config(cfg, arm, seed, epochs), store=store)
            ids.append(run.id)
            r = out[arm]
            # early stopping restores the best weights: their metrics are those of the best epoch
            final = run.metrics[run.best_epoch - 1] if run.best_epoch is not None else run.final
            if arm == "early_stopping":
                r["best_epoch"].append(run.best_epoch if run.best_epoch is not None else run.final["epoch"])
            r["final_test_loss"].append(final["test_loss"])
            r["final_train_loss"].append(final["train_loss"])
            r["test_curve"].append(run.metric("test_loss").tolist())
            r["val_curve"].append(run.metric("val_loss").tolist())
            r["train_curve"].append(run.metric("train_loss").tolist())
    for arm in NET_ARMS:
        out[arm]["mean_test_loss"] = float(np.mean(out[arm]["final_test_loss"]))
        out[arm]["mean_train_loss"] = float(np.mean(out[arm]["final_train_loss"]))
    out["seeds"] = [cfg.seed + s for s in range(n_seeds)]
    out["epochs"] = epochs
    out["noise_floor"] = cfg.net_noise**2
    return out, ids


# ---- the experiment ---------------------------------------------------------------------------------------------


def _run(cfg: RegularizationConfig, progress: Progress) -> ExperimentResult:
    poly = polynomial_part(cfg)
    net, ids = net_part(cfg, progress)
    tr, te = poly["degree_train_mse"], poly["degree_test_mse"]
    best = int(np.argmin(te))
    train_falls = all(b <= a * (1 + 1e-9) for a, b in zip(tr, tr[1:]))
    u_degree = 0 < best < len(te) - 1
    lte = poly["l2_test_mse"]
    best_l2 = int(np.argmin(lte))
    u_l2 = 0 < best_l2 < len(lte) - 1
    none = net["none"]["final_test_loss"]
    helps = {
        arm: all(a < b for a, b in zip(net[arm]["final_test_loss"], none)) for arm in ("dropout", "early_stopping")
    }
    holds = train_falls and u_degree and u_l2 and all(helps.values())
    lam = poly["l2"][best_l2]
    evidence = (
        f"polynomial training MSE falls from {tr[0]:.3g} (D = {cfg.degrees[0]}) to {tr[-1]:.2g} "
        f"(D = {cfg.degrees[-1]}) while test MSE is lowest at D = {cfg.degrees[best]} ({te[best]:.3g}, "
        f"{te[0]:.3g} at D = {cfg.degrees[0]}, {te[-1]:.3g} at D = {cfg.degrees[-1]}); at D = "
        f"{poly['l2_degree']} L2 λ = {lam:g} gives test MSE {lte[best_l2]:.3g} against {lte[0]:.3g} at "
        f"λ = 0 and {lte[-1]:.3g} at λ = {poly['l2'][-1]:g}; the over-parameterised net's mean test loss "
        f"is {net['none']['mean_test_loss']:.3g} without a remedy, {net['dropout']['mean_test_loss']:.3g} "
        f"with dropout {cfg.dropout:g} and {net['early_stopping']['mean_test_loss']:.3g} with early "
        f"stopping (noise floor {net['noise_floor']:.3g}, {len(net['seeds'])} seeds)"
    )
    tables = [
        Table(
            f"Polynomial fits of sin(πx) + N(0, {cfg.poly_noise:g}²), {cfg.n_points} training points (seed 004)",
            ["degree D", "train MSE", "test MSE"],
            [[d, a, b] for d, a, b in zip(cfg.degrees, tr, te)],
        ),
        Table(
            f"L2 strength sweep on the degree-{poly['l2_degree']} fit: mean (y − f)² + λ/2 Σ w²",
            ["λ", "train MSE", "test MSE"],
            [[lam_, a, b] for lam_, a, b in zip(poly["l2"], poly["l2_train_mse"], lte)],
        ),
        Table(
            f"{cfg.depth}×{cfg.width} {cfg.activation} net, teacher–student regression, "
            f"{cfg.n_train // 2} training examples, noise σ² = {net['noise_floor']:g}, {net['epochs']} epochs "
            f"(Adam, lr {cfg.lr:g})",
            ["remedy", "seed", "train loss", "test loss"] + ["stopped at epoch"],
            [
                [
                    arm,
                    s,
                    net[arm]["final_train_loss"][i],
                    net[arm]["final_test_loss"][i],
                    net["early_stopping"]["best_epoch"][i] if arm == "early_stopping" else None,
                ]
                for i, s in enumerate(net["seeds"])
                for arm in NET_ARMS
            ],
        ),
    ]
    from gradwatch.report.plots import Curves
    from gradwatch.report.plots_regularization import PolynomialFits

    c = poly["curves"]
    labels = {
        "none": "no remedy",
        "dropout": f"dropout p = {cfg.dropout:g}",
        "early_stopping": f"early stopping (patience {cfg.patience})",
    }
    epochs_axis = list(range(1, net["epochs"] + 1))
    shown = [
        (cfg.degrees[0], " (under-fits)"),
        (cfg.degrees[best], " (best test MSE)"),
        (cfg.degrees[-1], " (over-fits)"),
    ]
    figures = {
        "main": PolynomialFits(
            poly["train_points"]["x"],
            poly["train_points"]["y"],
            c["x"],
            c["truth"],
            {f"D = {d}" + note: c["by_degree"][str(d)] for d, note in shown},
            title=f"Polynomial fits to {cfg.n_points} noisy points of sin(πx)",
        ),
        "degree": Curves(
            {"train MSE": (cfg.degrees, tr), "test MSE": (cfg.degrees, te)},
            xlabel="degree D",
            ylabel="mean squared error",
            title="Under- and over-fitting against polynomial degree",
            logy=True,
            markers=True,
            hline=(poly["noise_variance"], "noise variance σ²"),
        ),
        "l2": Curves(
            {"train MSE": (poly["l2"][1:], poly["l2_train_mse"][1:]), "test MSE": (poly["l2"][1:], lte[1:])},
            xlabel="L2 strength λ",
            ylabel="mean squared error",
            title=f"L2 sweep on the degree-{poly['l2_degree']} fit (dashed: test MSE at λ = 0)",
            logx=True,
            logy=True,
            markers=True,
            hline=(lte[0], "test MSE at λ = 0"),
        ),
        "nets": Curves(
            {
                labels[arm]: (epochs_axis[: len(net[arm]["test_curve"][0])], net[arm]["test_curve"][0])
                for arm in NET_ARMS
            },
            xlabel="epoch",
            ylabel="test loss (MSE)",
            title=f"Over-parameterised {cfg.depth}×{cfg.width} net, seed {net['seeds'][0]}",
            logy=True,
            hline=(net["noise_floor"], "noise floor σ²"),
        ),
    }
    numbers = {
        "polynomial": poly,
        "nets": net,
        "best_degree": cfg.degrees[best],
        "best_l2": lam,
        "remedy_lowers_test_loss_on_every_seed": helps,
    }
    return ExperimentResult(
        name="regularization",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=tables,
        figures=figures,
        run_ids=ids,
    )


EXPERIMENT = Experiment(
    name="regularization",
    seeds="001, 003, 004",
    summary="polynomial under/over-fitting, an L2 sweep, dropout 0.4 and early stopping on an over-fitting net",
    claim=CLAIM,
    config=RegularizationConfig,
    run=_run,
)

"""The trainability phase diagram (Schoenholz et al. 2017, Fig. 5/6): which (σ_w², depth) train at all.

Deep tanh nets with W_ij ~ N(0, σ_w²/N) (``init="normal"``, ``init_std = √(σ_w²/N)``, N the width) and
biases 0 (σ_b² = 0: the lab initialises biases to a constant) are trained on the digits (``--quick``) or MNIST
(full mode, when its files are found) for a fixed budget of plain SGD steps, over a grid of σ_w² × depth and
several seeds. The test accuracy after the budget is drawn as a heatmap with mean-field theory's trainable depth
6 ξ_c(σ_w²) (:mod:`gradwatch.theory.meanfield`) over it: nets deeper than a few ξ_c cannot pass signal or
gradient and stay near chance; the deepest trainable nets sit at the critical σ_w² (= 1 at σ_b² = 0), where
ξ_c diverges.

All σ_w² and seeds of one depth differ only in init scale and seed, so they are trained as one vmapped model
(:mod:`gradwatch.lab.batched`); the runs are stored under their run keys in ``--store`` (a re-run trains
only what is missing) and the plots read them back.

How this differs from the paper: Schoenholz et al. train nets of a few hundred units and up to a few hundred
layers on MNIST and CIFAR-10 with σ_b² = 0.05, for many more steps; here the widths are 32 (quick) / 64 (full),
depths up to 40 / 60, budgets 300 / 600 SGD steps of batch 64, and σ_b² = 0. A cell counts as learned at 3×
chance accuracy (0.3). At σ_b² = 0 the critical point σ_w² = 1 has q* = 0: the signal of a critical net fades
with depth (as a power, not exponentially), so within a short budget the deepest nets learn best slightly on the
chaotic side (σ_w² 1.25–1.5 here); the claim is that the band of σ_w² that still learns at the largest depth
surrounds the critical one, not that the best cell is exactly critical. The chaotic side's
6 ξ_c is far deeper than most nets here, so mainly the ordered side's boundary is tested.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from gradwatch.lab.experiments.base import Experiment, ExperimentResult, Progress, Table
from gradwatch.lab.experiments.trained import TrainedExperimentConfig

CLAIM = (
    "After a fixed training budget, deep tanh nets learn (test accuracy well above chance) where their depth "
    "is within mean-field theory's trainable depth 6 ξ_c(σ_w²) and stay near chance beyond it, and at the "
    "largest depth only a band of σ_w² around the critical one, where ξ_c diverges, still learns."
)
TRAINED_ACCURACY = 0.3  # a cell "learns" when its mean test accuracy reaches 3× chance (10 classes)
AGREEMENT = 0.85  # share of cells whose learned / not learned agrees with depth ≤ 6 ξ_c
QUICK_SIGMA_W2 = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0]
FULL_SIGMA_W2 = [0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0]
QUICK_DEPTHS = [2, 5, 10, 20, 40]
FULL_DEPTHS = [2, 5, 10, 15, 20, 30, 45, 60]


class TrainabilityConfig(TrainedExperimentConfig):
    sigma_b2: float = Field(0.0, ge=0, le=0, description="bias variance σ_b² (0: the lab's biases are constants)")
    width: int = Field(64, ge=4, description="units per hidden layer N (--quick: 32)")
    steps: int = Field(600, ge=1, description="SGD steps every net gets (--quick: 300)")
    lr: float = Field(0.01, gt=0, description="SGD learning rate")
    batch_size: int = Field(64, ge=1, description="examples per step")
    seeds: int = Field(3, ge=1, description="seeds per cell (--quick: 2)")


def sigma_w2_of(config: dict) -> float:
    """σ_w² = N·init_std² of a stored run's config (rounded: it was set from σ_w²)."""
    return round(config["width"] * config["init_std"] ** 2, 9)


def band_around(learned: np.ndarray, at: int) -> bool:
    """Whether the σ_w² that learned form one contiguous band that holds grid point ``at`` (the critical σ_w²)
    and neither end of the grid: trainability narrows around the critical point from both sides."""
    idx = np.flatnonzero(learned)
    return (
        len(idx) > 0
        and idx[-1] - idx[0] + 1 == len(idx)
        and idx[0] <= at <= idx[-1]
        and idx[0] > 0
        and idx[-1] < len(learned) - 1
    )


def _run(cfg: TrainabilityConfig, progress: Progress) -> ExperimentResult:
    from gradwatch.lab.batched import group_configs, train_batched_records
    from gradwatch.lab.config import Config
    from gradwatch.lab.keys import run_key
    from gradwatch.store import RunStore
    from gradwatch.store.records import store_record
    from gradwatch.theory.meanfield import critical_sigma_w2, mean_field

    width = min(cfg.width, 32) if cfg.quick else cfg.width
    steps = min(cfg.steps, 300) if cfg.quick else cfg.steps
    seeds = min(cfg.seeds, 2) if cfg.quick else cfg.seeds
    sw2s, depths = (QUICK_SIGMA_W2, QUICK_DEPTHS) if cfg.quick else (FULL_SIGMA_W2, FULL_DEPTHS)
    fixed = dict(
        activation="tanh",
        init="normal",
        width=width,
        optimizer="sgd",
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        epochs=10**6,
        steps=steps,
        dataset=cfg.dataset,
        data_dir=cfg.data_dir,
    )
    planned: dict[str, dict] = {}  # run key → full config, depth-major then σ_w² then seed (seeds innermost)
    for depth in depths:
        for s in sw2s:
            for k in range(seeds):
                run = Config(**fixed, depth=depth, init_std=math.sqrt(s / width), seed=cfg.seed + k).to_dict()
                planned.setdefault(run_key(run), run)
    with RunStore(cfg.store) as store:
        done = store.completed(planned)
        todo = [c for key, c in planned.items() if key not in done]
        for group in progress.track(group_configs(todo), "depths (σ_w² × seeds batched)"):
            for record in train_batched_records(group):
                store_record(store, run_key(record["config"]), record)
        runs = list(store.completed(planned).values())
    failed = len(planned) - len(runs)
    acc: dict[tuple[float, int], list[float]] = {}
    for r in runs:
        acc.setdefault((sigma_w2_of(r["config"]), r["config"]["depth"]), []).append(r["summary"]["test_accuracy"])
    mean_acc = np.array([[np.mean(acc.get((s, d), [np.nan])) for s in sw2s] for d in depths])  # [depths, σ_w²]
    depth6 = np.array([mean_field("tanh", s, cfg.sigma_b2).trainable_depth for s in sw2s])
    trained = mean_acc >= TRAINED_ACCURACY
    predicted = np.array(depths)[:, None] <= depth6[None, :]
    agreement = float(np.mean(trained == predicted))
    critical = critical_sigma_w2("tanh", cfg.sigma_b2)
    deepest = mean_acc[-1]
    best_sw2 = sw2s[int(np.nanargmax(deepest))]
    nearest_at = int(np.argmin([abs(math.log(s / critical)) for s in sw2s]))
    holds = agreement >= AGREEMENT and band_around(trained[-1], nearest_at) and failed == 0
    evidence = (
        f"{len(runs)} nets ({len(sw2s)} σ_w² × {len(depths)} depths × {seeds} seeds, width {width}, "
        f"{steps} SGD steps at lr {cfg.lr:g}, {cfg.dataset}): learned (test accuracy ≥ {TRAINED_ACCURACY}, "
        f"3× chance) exactly where depth ≤ 6 ξ_c in {agreement:.0%} of the cells; at depth {depths[-1]} "
        f"σ_w² = {', '.join(f'{s:g}' for s, ok in zip(sw2s, trained[-1]) if ok) or 'none'} learn "
        f"(critical σ_w² {critical:.3g}; best {best_sw2:g}, accuracy {np.nanmax(deepest):.2f}); accuracies "
        f"there {', '.join(f'{a:.2f}' for a in deepest)} over σ_w² = {', '.join(f'{s:g}' for s in sw2s)}"
    )
    table = Table(
        f"test accuracy after {steps} SGD steps (mean over {seeds} seeds); last row: 6 ξ_c",
        ["depth"] + [f"σ_w²={s:g}" for s in sw2s],
        [[d, *row.tolist()] for d, row in zip(depths, mean_acc)] + [["6 ξ_c", *depth6.tolist()]],
    )
    setup = Table(
        "this run against Schoenholz et al. 2017 (their Fig. 5/6)",
        ["", "this run", "the paper"],
        [
            ["data", cfg.dataset, "MNIST and CIFAR-10"],
            ["width N", width, "a few hundred units"],
            ["depths", ", ".join(map(str, depths)), "up to several hundred layers"],
            ["budget", f"{steps} plain SGD steps, batch {cfg.batch_size}, lr {cfg.lr:g}", "longer training"],
            ["σ_b²", f"{cfg.sigma_b2:g} (biases start at 0)", "0.05"],
            ["learned", f"test accuracy ≥ {TRAINED_ACCURACY} (3× chance)", "accuracy shown as a colour map"],
        ],
    )
    from gradwatch.report.sweep_plots import SweepHeatmap

    dense = np.geomspace(sw2s[0] * 0.9, sw2s[-1] * 1.1, 200)
    curve = np.array([mean_field("tanh", s, cfg.sigma_b2).trainable_depth for s in dense])
    curve = np.where(np.isfinite(curve), curve, 1e6)
    figures = {
        "main": SweepHeatmap(
            runs,
            ("σ_w² (weight variance × N)", sigma_w2_of),
            "depth",
            "test_accuracy",
            curves={"6 ξ_c (mean field)": (dense.tolist(), curve.tolist())},
            vmin=0.0,
            vmax=1.0,
            title=f"Trainability of tanh nets ({cfg.dataset}, width {width}, "
            f"{steps} SGD steps, σ_b² = {cfg.sigma_b2:g})",
        )
    }
    numbers = {
        "sigma_w2": sw2s,
        "depths": depths,
        "test_accuracy": mean_acc.tolist(),
        "learned": trained.tolist(),
        "predicted_trainable": predicted.tolist(),
        "trainable_depth": depth6.tolist(),
        "agreement": agreement,
        "best_sigma_w2_at_max_depth": best_sw2,
        "critical_sigma_w2": critical,
        "width": width,
        "steps": steps,
        "seeds": seeds,
        "lr": cfg.lr,
        "dataset": cfg.dataset,
        "runs": len(runs),
        "trained_now": len(todo),
    }
    return ExperimentResult(
        name="trainability",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=[table, setup],
        figures=figures,
        run_ids=[r["id"] for r in runs],
    )


EXPERIMENT = Experiment(
    name="trainability",
    seeds="beyond the seeds (Schoenholz et al. 2017, Fig. 5/6)",
    summary="trained accuracy over σ_w² × depth of tanh nets, with the mean-field trainable depth 6 ξ_c drawn over it",
    claim=CLAIM,
    config=TrainabilityConfig,
    run=_run,
)

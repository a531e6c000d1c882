"""Seed 000's problem 1 (Nielsen, ch. 5): how wide is the set of inputs where a sigmoid layer *grows* a gradient?

A layer multiplies the gradient by w σ'(wa + b). Since σ' ≤ 1/4, |w σ'| ≥ 1 needs |w| ≥ 4, and then the set of
activations a with |w σ'(wa + b)| ≥ 1 is an interval of width (2/|w|)·ln(|w|(1 + √(1 − 4/|w|))/2 − 1)
(:func:`gradwatch.theory.nielsen_interval_width`; independent of b, which only shifts it). The width is 0 at
|w| = 4, largest at |w| ≈ 6.9 ("numerically show…"), then falls like ln|w|/|w|: exploding through a sigmoid
needs a large weight *and* an input in a narrow window. The closed form is compared with root finding
(:func:`gradwatch.theory.interval_width_numeric`) at every |w|; tanh (max σ' = 1, so |w| ≥ 1) is drawn beside it.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from gradwatch.lab.experiments.base import Experiment, ExperimentConfig, ExperimentResult, Progress, Table
from gradwatch.theory.nielsen import (
    interval_width_numeric,
    min_weight_for_growth,
    nielsen_interval_width,
    nielsen_optimum,
)

CLAIM = (
    "A sigmoid neuron can make a gradient grow (|w σ'(wa + b)| ≥ 1) only for |w| ≥ 4 and only on an interval "
    "of inputs at most about 0.45 wide, widest at |w| ≈ 6.9, where the closed form and root finding agree."
)
SEED_OPTIMUM = 6.9  # seed 000's "≈ 6.9"
CLOSED_VS_NUMERIC_TOL = 1e-9  # max |closed form − root finding| over the grid


class IntervalConfig(ExperimentConfig):
    w_max: float = Field(30.0, gt=4, description="largest |w| on the grid")
    points: int = Field(600, ge=20, le=100_000, description="grid points in (0, w_max] (--quick: 150)")


def _run(cfg: IntervalConfig, progress: Progress) -> ExperimentResult:
    n = min(cfg.points, 150) if cfg.quick else cfg.points
    w = np.linspace(cfg.w_max / n, cfg.w_max, n)
    closed = [nielsen_interval_width(v) for v in w]
    numeric = [interval_width_numeric(v) for v in progress.track(w, "root finding", total=n)]
    tanh = [interval_width_numeric(v, "tanh") for v in w]
    opt = nielsen_optimum()
    diff = float(np.max(np.abs(np.subtract(closed, numeric))))
    threshold = min_weight_for_growth("sigmoid")
    empty_below = all(c == 0 for v, c in zip(w, closed) if v < threshold)
    holds = (
        empty_below
        and diff < CLOSED_VS_NUMERIC_TOL
        and round(opt.weight, 1) == SEED_OPTIMUM
        and max(closed) <= opt.width + 1e-12
    )
    evidence = (
        f"the width is 0 for all {sum(v < threshold for v in w)} grid points with |w| < {threshold:g}, "
        f"largest {opt.width:.4f} at |w| = {opt.weight:.4f} (seed 000: ≈ {SEED_OPTIMUM}), "
        f"{nielsen_interval_width(cfg.w_max):.3f} at |w| = {cfg.w_max:g}; closed form and root finding "
        f"differ by at most {diff:.1e} over {n} values of |w|"
    )
    marks = [4.0, 5.0, opt.weight, 10.0, 20.0, cfg.w_max]
    table = Table(
        "Width of {a : |w σ'(wa + b)| ≥ 1} (any b)",
        ["|w|", "closed form", "root finding", "tanh"],
        [[m, nielsen_interval_width(m), interval_width_numeric(m), interval_width_numeric(m, "tanh")] for m in marks],
    )
    from gradwatch.report.theory_plots import IntervalWidth

    figure = IntervalWidth(
        w.tolist(),
        {"sigmoid, closed form": closed, "sigmoid, root finding": numeric, "tanh, root finding": tanh},
        optimum=(opt.weight, opt.width),
    )
    numbers = {
        "w": w.tolist(),
        "closed_form": closed,
        "numeric": numeric,
        "tanh": tanh,
        "optimum": opt.to_dict(),
        "max_abs_difference": diff,
        "threshold": threshold,
    }
    return ExperimentResult(
        name="interval",
        claim=CLAIM,
        holds=holds,
        evidence=evidence,
        numbers=numbers,
        config=cfg.to_dict(),
        tables=[table],
        figures={"main": figure},
    )


EXPERIMENT = Experiment(
    name="interval",
    seeds="000",
    summary="width of the inputs where |w σ'(wa + b)| ≥ 1 against |w|, optimum ≈ 6.9 (Nielsen's problem)",
    claim=CLAIM,
    config=IntervalConfig,
    run=_run,
)

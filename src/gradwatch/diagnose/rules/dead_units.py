"""``dead_units``: more than ``dead_fraction`` of a layer's units are dead — no active path to the loss for the
whole batch — on runs of at least ``MIN_DEAD_RUN`` recorded steps."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from gradwatch.config import StrictModel
from gradwatch.diagnose.facts import SATURATING, Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy, pick
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import episodes, first_step, nanmedian, persistent
from gradwatch.nn.activations import ACTIVATIONS
from gradwatch.stat_names import ACT_DEAD, GRAD_DEAD

MIN_DEAD_RUN = 3  # consecutive recorded steps a layer's units must be dead (few examples leave rows zero by chance)


class Limits(StrictModel):
    """The thresholds this rule owns (fields of :class:`gradwatch.diagnose.Thresholds`)."""

    dead_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="[0.5] act_dead above this: dead units (SageMaker Debugger's DeadRelu rule flags a layer when "
        "this fraction of its units is inactive)",
    )


def find(ctx: Context) -> Finding | None:
    """Dead units from the weight gradient (``grad_dead``: rows of ∂L/∂W and bias entries exactly zero over the
    batch, whatever activation) where measured, from the activations (``act_dead``) elsewhere; only runs of
    ``MIN_DEAD_RUN`` recorded steps count. A layer behind a dead layer nearer the loss whose rows are zero because
    nothing reaches it (its whole gradient zero, or its activation hooks see its units alive) is not named."""
    s, t, h = ctx.s, ctx.t, ctx.h
    dead_fraction = ctx.limits(Limits).dead_fraction
    acts = np.asarray([a or "" for a in h.activations], dtype=object)
    eligible = np.isin(acts, tuple(ACTIVATIONS)) & ~np.isin(acts, SATURATING)
    g = s.stat(GRAD_DEAD)
    a = s.stat(ACT_DEAD)
    a = np.where(eligible[None, :], a, np.nan) if a is not None else None
    v = g if g is not None else np.full((len(s.steps), s.n_layers), np.nan)
    if a is not None:
        per_layer_grad = np.isfinite(v).any(axis=0)
        v = np.where(per_layer_grad[None, :], v, a)
    measured = np.isfinite(v)
    cond = measured & (v > dead_fraction)
    run = min(MIN_DEAD_RUN, len(s.steps))
    lasting = np.zeros_like(cond)
    for c in range(s.n_layers):  # only runs of at least `run` dead recorded steps count
        for a0, b0 in episodes(cond[:, c]):
            if b0 - a0 + 1 >= run:
                lasting[a0 : b0 + 1, c] = True
    cond = lasting
    cols = s.input_side_first(np.flatnonzero(persistent(cond, measured, t.persist_fraction)))
    if g is not None and len(cols) > 1:
        grad_dead = g

        def starved(c: int) -> bool:
            """Behind a layer nearer the loss that is dead on each of its dead steps, and either every row of its
            gradient is zero there or its activation hooks saw its units alive: no gradient reaches it, its units
            are not dead."""
            nearer = [d for d in cols if s.depth[d] < s.depth[c]]
            rows = np.flatnonzero(cond[:, c])
            if not nearer or not all(cond[r, nearer].any() for r in rows):
                return False
            seen = a[rows, c][np.isfinite(a[rows, c])] if a is not None else np.zeros(0)
            return bool((grad_dead[rows, c] >= 1.0).all() or (len(seen) and np.median(seen) <= dead_fraction))

        cols = [c for c in cols if not starved(c)]
    if not cols:
        return None
    med = nanmedian(np.where(measured, v, np.nan)[:, cols], axis=0)
    sources = {
        name: nanmedian(x[:, cols], axis=0).tolist() for name, x in ((GRAD_DEAD, g), (ACT_DEAD, a)) if x is not None
    }
    lines = []
    for c, m in zip(cols, med):
        source = "rows of ∂L/∂W exactly zero" if g is not None and np.isfinite(g[:, c]).any() else "zero outputs"
        line = f"layer {h.layers[c]}: {m:.0%} of its units dead ({source} over the batch)"
        if a is not None and g is not None and np.isfinite(a[:, c]).any():
            line += f"; its activation hooks saw {nanmedian(a[:, c]):.0%}"
        lines.append(line)
    return Finding(
        "dead_units",
        [h.layers[c] for c in cols],
        first_step(s, cond, cols),
        f"more than {dead_fraction:.0%} of the units are dead (no active path to the loss for the whole "
        f"batch) in {len(cols)} layer(s)",
        {"lines": lines, "dead_fraction": med.tolist(), **sources},
        remedies(ctx.facts),
    )


def remedies(f: Facts) -> list[Remedy]:
    return pick(
        ("leaky", "ReLU units whose input is negative for every example pass no gradient", True),
        ("lower_lr", "a large step can push a unit's bias far negative for good", True),
        ("init", "with He init about half the units are active at the start", True),
        ("batchnorm", "the model has no normalisation layer", not f.normalised),
    )


RULE = Rule(
    "dead_units",
    60,
    "dead layers",
    find,
    limits=Limits,
    shared=("persist_fraction",),
    needs=(GRAD_DEAD, ACT_DEAD),
    missing="dead units (record activation statistics: stats='full')",
    remedies=remedies,
)

"""``stalled_updates``: each optimizer step changes a layer's weights by less than ``stalled_ratio`` of their
norm, on at least ``persist_fraction`` of the measured steps."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from gradwatch.config import StrictModel
from gradwatch.diagnose.facts import Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy, pick
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.rules.large_updates import UPDATES_MISSING
from gradwatch.diagnose.signals import first_step, fmt, nanmedian, persistent
from gradwatch.stat_names import UPDATE_RATIO


class Limits(StrictModel):
    """The thresholds this rule owns (fields of :class:`gradwatch.diagnose.Thresholds`)."""

    stalled_ratio: float = Field(1e-6, gt=0, description="[1e-6] update_ratio below this: stalled updates")


def find(ctx: Context) -> Finding | None:
    s, t = ctx.s, ctx.t
    stalled_ratio = ctx.limits(Limits).stalled_ratio
    u = s.stat(UPDATE_RATIO)
    if u is None or s.weight_ok is None:
        return None
    measured = np.isfinite(u) & s.weight_ok
    cond = measured & (u < stalled_ratio)
    cols = s.input_side_first(np.flatnonzero(persistent(cond, measured, t.persist_fraction)))
    if not cols:
        return None
    h = s.h
    med = nanmedian(np.where(measured, u, np.nan)[:, cols], axis=0)
    return Finding(
        "stalled_updates",
        [h.layers[c] for c in cols],
        first_step(s, cond, cols),
        f"each optimizer step changes these layers' weights by less than {stalled_ratio:g} of their norm",
        {
            "lines": [f"layer {h.layers[c]}: ‖Δθ‖/‖θ‖ = {fmt(m)}" for c, m in zip(cols, med)],
            UPDATE_RATIO: med.tolist(),
        },
        remedies(ctx.facts),
    )


def remedies(f: Facts) -> list[Remedy]:
    if f.adaptive:
        return pick(("raise_lr", "an adaptive optimizer's step is about lr whatever the gradient", True))
    sat_only = f.saturating and not f.relu_family
    return pick(
        ("raise_lr", "under SGD the step is lr·‖g‖", True),
        ("lstm", "a plain recurrent layer lets the gradient decay through time", f.recurrent and not f.gated),
        ("init", "the gradient reaching these layers is small", True),
        ("activation", "a saturating activation shrinks the gradient", sat_only),
        ("batchnorm", "the model has no normalisation layer", not f.normalised),
        ("residual", "the model has no skip connection", f.residual is False),
    )


RULE = Rule(
    "stalled_updates",
    70,
    "stalled layers",
    find,
    limits=Limits,
    shared=("persist_fraction",),
    needs=(UPDATE_RATIO,),
    missing=UPDATES_MISSING,
    remedies=remedies,
)

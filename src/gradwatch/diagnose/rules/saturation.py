"""``saturation``: more than ``saturation_fraction`` of a sigmoid/tanh-like (or recurrent) layer's activation
inputs sit where σ' is below 1% of its maximum, on at least ``persist_fraction`` of the measured steps."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from gradwatch.config import StrictModel
from gradwatch.diagnose.facts import RECURRENT, SATURATING, Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy, pick
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import first_step, nanmedian, persistent
from gradwatch.stat_names import ACT_SATURATION

WHAT = "of the activation inputs have σ' below 1% of its maximum"


class Limits(StrictModel):
    """The thresholds this rule owns (fields of :class:`gradwatch.diagnose.Thresholds`)."""

    saturation_fraction: float = Field(0.5, gt=0, le=1, description="[0.5] act_saturation above this: saturation")


def find(ctx: Context) -> Finding | None:
    s, t, h = ctx.s, ctx.t, ctx.h
    acts = np.asarray([a or "" for a in h.activations], dtype=object)
    eligible = np.isin(acts, SATURATING) | np.isin(np.asarray(h.kinds, dtype=object), RECURRENT)
    limit = ctx.limits(Limits).saturation_fraction
    v = np.where(eligible[None, :], h.stat(ACT_SATURATION), np.nan)
    measured = np.isfinite(v)
    cond = measured & (v > limit)
    cols = s.input_side_first(np.flatnonzero(persistent(cond, measured, t.persist_fraction)))
    if not cols:
        return None
    med = nanmedian(v[:, cols], axis=0)
    names = [h.layers[c] for c in cols]
    lines = [f"layer {h.layers[c]} ({h.activations[c] or h.kinds[c]}): {m:.0%} {WHAT}" for c, m in zip(cols, med)]
    return Finding(
        "saturation",
        names,
        first_step(s, cond, cols),
        f"more than {limit:.0%} {WHAT} in {len(names)} layer(s)",
        {"lines": lines, ACT_SATURATION: med.tolist()},
        remedies(ctx.facts),
    )


def remedies(f: Facts) -> list[Remedy]:
    return pick(
        ("activation", "the saturated units use a sigmoid/tanh-like activation", f.saturating and not f.relu_family),
        ("init", "large weights push the pre-activations into the flat tails", True),
        ("batchnorm", "the model has no normalisation layer", not f.normalised),
        ("preprocess", "inputs far from zero saturate the first layer", True),
        ("lower_lr", "large steps push units into saturation", True),
    )


RULE = Rule(
    "saturation",
    50,
    "saturated layers",
    find,
    limits=Limits,
    shared=("persist_fraction",),
    needs=(ACT_SATURATION,),
    missing="saturation (record activation statistics: stats='full')",
    remedies=remedies,
)

"""``large_updates``: an optimizer step changes a layer's weights by more than ``large_update_ratio`` of their
norm; vectors (gains, LayerScale, biases) are judged on their own terms (``vector_rms_floor``)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from gradwatch.config import StrictModel
from gradwatch.diagnose.facts import Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy, pick
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import Signals, first_step, fmt, nanmax
from gradwatch.stat_names import UPDATE_RATIO

UPDATES_MISSING = "too-large and stalled updates (watch with an optimizer to record update_ratio)"


class Limits(StrictModel):
    """The thresholds this rule owns (fields of :class:`gradwatch.diagnose.Thresholds`)."""

    large_update_ratio: float = Field(
        1.0,
        gt=0,
        description="[1.0] large updates: one optimizer step changes a layer's weights by more than this fraction of "
        "their norm (Karpathy's rule of thumb puts healthy updates near 1e-3)",
    )
    vector_rms_floor: float = Field(
        1e-2,
        gt=0,
        description="[1e-2] vectors (biases, gains, LayerScale, norm scales) are judged apart from matrices: their "
        "update is compared with their norm or with this RMS, whichever is larger, so a gain initialised "
        "at 1e-5 by design (LayerScale) that Adam moves by lr per step is not a too-large update",
    )


def _vector_updates(
    s: Signals, t: Limits, u: np.ndarray, w: np.ndarray, weight_ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(update ratio, where it means something) with vectors (gains, LayerScale, biases) judged on their own terms:
    their step over their norm or, for a vector initialised tiny by design (LayerScale at 1e-5), over
    ``vector_rms_floor`` of RMS, whichever is larger."""
    numel = np.maximum(np.asarray(s.h.numel, dtype=float), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        floor = np.maximum(w, np.sqrt(numel) * t.vector_rms_floor)
        vec = u * w / floor
    ratio = np.where(s.vector[None, :], vec, u)
    ok = np.where(s.vector[None, :], np.isfinite(w) & (w > 0), weight_ok)
    return ratio, ok


def find(ctx: Context) -> Finding | None:
    s, t = ctx.s, ctx.limits(Limits)
    u = s.stat(UPDATE_RATIO)
    if u is None or s.weight is None or s.weight_ok is None:
        return None
    u, ok = _vector_updates(s, t, u, s.weight, s.weight_ok)
    cond = np.isfinite(u) & ok & (u > t.large_update_ratio)
    cols = s.input_side_first(np.flatnonzero(cond.any(axis=0)))
    if not cols:
        return None
    h = s.h
    peak = nanmax(np.where(cond, u, np.nan)[:, cols], axis=0)
    step = first_step(s, cond, cols)
    lines = [f"layer {h.layers[c]}: ‖Δθ‖/‖θ‖ up to {fmt(v)}" for c, v in zip(cols, peak)]
    n_steps = int(cond.any(axis=1).sum())
    lines.append(f"{n_steps} of {int(np.isfinite(u).any(axis=1).sum())} measured steps have such updates")
    return Finding(
        "large_updates",
        [h.layers[c] for c in cols],
        step,
        f"an optimizer step changed {len(cols)} layer(s)' weights by up to {fmt(float(nanmax(peak)))}× their "
        f"norm (healthy: about 1e-3)",
        {"lines": lines, UPDATE_RATIO: peak.tolist()},
        remedies(ctx.facts),
    )


def remedies(f: Facts) -> list[Remedy]:
    return pick(
        ("lower_lr", "the step is comparable to the weights themselves", True),
        ("warmup", "Adam's first steps are as large as the learning rate", bool(f.adaptive)),
        ("clipping", "under SGD the step is lr·‖g‖; clipping bounds it", not f.clips and f.adaptive is False),
    )


RULE = Rule(
    "large_updates",
    30,
    "too-large updates",
    find,
    limits=Limits,
    shared=("min_weight_rms",),
    needs=(UPDATE_RATIO,),
    missing=UPDATES_MISSING,
    remedies=remedies,
)

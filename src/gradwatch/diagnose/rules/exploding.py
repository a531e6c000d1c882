"""``exploding``: an event — the model's gradient norm (before clipping) jumps ``spike_factor`` (under adaptive
optimizers ``spike_factor_adaptive``) above its recent, whole-run and starting levels, overflows the float type,
or is ``explode_relative`` times the weights' norm at any step, the first included; with backward gains
recorded, a chain whose gains multiply above ``exploding_ratio`` too. Growth from a tiny start is neither.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from gradwatch.config import StrictModel
from gradwatch.diagnose.facts import RECURRENT, Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.gains import as_recurrent, gains, reach
from gradwatch.diagnose.remedies import Remedy, pick
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import fmt, nanmedian, persistent
from gradwatch.stat_names import BACKWARD_GAIN, GRAD_NORM, NONFINITE


class Limits(StrictModel):
    """The thresholds this rule owns (fields of :class:`gradwatch.diagnose.Thresholds`)."""

    exploding_ratio: float = Field(
        1e2,
        gt=1,
        description="[1e2] exploding (with backward gains, stats='full'): the gradient reaching a layer's output is "
        "this many times the one at the output layer",
    )
    spike_factor: float = Field(
        10.0,
        gt=1,
        description="[10] exploding event: the total gradient norm (before clipping) is this many times its median "
        "over the previous spike_window steps and over the whole run (a gradient-norm spike, as in the "
        "loss/gradient spike monitors of LLM training recipes)",
    )
    spike_factor_adaptive: float = Field(
        1e2,
        gt=1,
        description="[1e2] the same under an adaptive optimizer (Adam, RMSprop…), whose step does not grow with "
        "the gradient: only a larger jump is an explosion there",
    )
    spike_window: int = Field(20, ge=3, description="[20] recorded steps of history a spike is compared with")
    explode_relative: float = Field(
        1e2,
        gt=0,
        description="[1e2] exploding at any step, the first included: the model's gradient norm is this many times "
        "its weight norm (healthy training with a mean loss: 1e-3 to 1)",
    )


def find(ctx: Context) -> Finding | None:
    s, t, facts = ctx.s, ctx.limits(Limits), ctx.facts
    h = s.h
    G = s.total_grad
    finite = np.isfinite(G) & (G > 0)
    events: list[tuple[int, str, list[int]]] = []  # (row, why, layers)
    bound = s.scale_bound  # under Adam-like optimizers ‖g‖/‖θ‖ says nothing of the step: those layers are left out
    weight, rel = s.weight, s.rel
    if weight is not None and rel is not None and bound.any():
        g_b = np.where(np.isnan(s.grad[:, bound]), 0.0, s.grad[:, bound])
        w_b = np.where(np.isnan(weight[:, bound]), 0.0, weight[:, bound])
        w_total = np.sqrt(np.sum(w_b**2, axis=1))
        # no ratio where no weight norm is known yet (a watch starting at an unsampled step) or where it is 0
        w_total = np.where(np.isnan(weight[:, bound]).all(axis=1) | (w_total == 0), np.nan, w_total)
        with np.errstate(invalid="ignore", divide="ignore"):
            R = np.sqrt(np.sum(g_b**2, axis=1)) / w_total
        for i in map(int, np.flatnonzero(finite & (R > t.explode_relative))):
            cols = [
                c for c in range(s.n_layers) if bound[c] and np.isfinite(rel[i, c]) and rel[i, c] > t.explode_relative
            ]
            events.append(
                (i, f"the gradient norm is {fmt(float(R[i]))}× the weights' norm (healthy training: 1e-3 to 1)", cols)
            )
    bad = s.stat(NONFINITE)
    overflow = np.isinf(G) & ((np.nan_to_num(bad, nan=0.0).sum(axis=1) == 0) if bad is not None else True)
    for i in map(int, np.flatnonzero(overflow)):  # every element finite, but their norm overflows the float type
        events.append(
            (
                int(i),
                "the gradient norm overflows the float type although every element is finite",
                [c for c in range(s.n_layers) if np.isinf(s.grad[i, c])],
            )
        )
    med_all = nanmedian(np.where(finite, G, np.nan))
    start = nanmedian(np.where(finite, G, np.nan)[: t.spike_window])  # the run's normal level at its start
    factor = t.spike_factor_adaptive if facts.adaptive else t.spike_factor
    for i in range(3, len(G)):
        if not finite[i]:
            continue
        prev = G[max(0, i - t.spike_window) : i]
        prev = prev[np.isfinite(prev) & (prev > 0)]
        if len(prev) < 3:
            continue
        med = float(np.median(prev))
        if G[i] > factor * max(med, med_all, start):  # above the recent, the usual and the starting level
            before = nanmedian(s.grad[max(0, i - t.spike_window) : i], axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                jump = s.grad[i] / before
            cols = [c for c in range(s.n_layers) if np.isfinite(jump[c]) and jump[c] > factor]
            events.append(
                (
                    i,
                    f"the gradient norm jumped to {fmt(float(G[i]))}, {fmt(float(G[i] / med))}× its median "
                    f"over the previous {len(prev)} steps",
                    cols,
                )
            )
    chain = reach(h)
    reach_cols: list[int] = []
    if chain is not None:
        reach_cond = np.isfinite(chain) & (chain > t.exploding_ratio)
        reach_cols = list(np.flatnonzero(persistent(reach_cond, np.isfinite(chain), ctx.t.persist_fraction)))
    if not events and not reach_cols:
        return None
    lines: list[str] = []
    events.sort()
    if events:
        row = events[0][0]
        step = int(s.steps[row])
        cols = sorted({c for r, _, cs in events if r == row for c in cs})
        lines += [f"step {int(s.steps[r])}: {why}" for r, why, _ in events[:5]]
        if len(events) > 5:
            lines.append(f"… {len(events) - 5} more such steps")
        summary = events[0][1]
    else:
        sampled = np.flatnonzero(~np.isnan(h.stat(BACKWARD_GAIN)).all(axis=1))
        step = int(s.steps[sampled[np.flatnonzero(reach_cond[:, reach_cols].any(axis=1))[0]]])
        cols = []
        summary = "each layer passes back more gradient than it receives"
    if reach_cols:
        assert chain is not None
        r = nanmedian(chain[:, reach_cols], axis=0)
        lines += [
            f"the gradient reaching layer {h.layers[c]}'s output is {fmt(v)}× the one at the output layer "
            f"(product of the backward gains after it)"
            for c, v in zip(reach_cols, r)
        ]
    if facts.clips:
        lines.append("values before clipping (grad_norm_preclip): the loop clips, the model produced these")
    cols = s.input_side_first(set(cols) | set(reach_cols)) or s.input_side_first(
        [c for c in range(s.n_layers) if np.isfinite(s.grad[events[0][0], c])] if events else []
    )
    gain_lines, gain_parts, _ = gains(h)
    recurrent = any(h.kinds[c] in RECURRENT for c in cols)
    return Finding(
        "exploding",
        [h.layers[c] for c in cols],
        step,
        summary,
        {"lines": lines + gain_lines, "event_steps": [int(s.steps[r]) for r, _, _ in events], **gain_parts},
        remedies(facts if not recurrent else as_recurrent(facts)),
    )


def remedies(f: Facts) -> list[Remedy]:
    return pick(
        ("clipping", "the loop does not clip the gradient norm yet", not f.clips),
        ("lower_lr", "large steps let the weights, and so the per-layer gain, grow", True),
        ("warmup", "the explosion comes early under an adaptive optimizer", bool(f.adaptive)),
        ("recurrent_init", "ρ(W_rec) > 1 makes the gradient grow like ρ^T through time", f.recurrent),
        ("tbptt", "shorter paths through time bound the product of Jacobians", f.recurrent),
        ("init", "a per-layer gain above 1 compounds with depth", not f.recurrent),
        ("init_scale", "a transformer's residual stack is sensitive to its initial scale", f.transformer),
        ("constraints", "bounded weights cannot make the backward pass grow", not f.transformer),
        ("batchnorm", "the model has no normalisation layer", not f.normalised),
    )


RULE = Rule(
    "exploding",
    20,
    "exploding layers",
    find,
    limits=Limits,
    shared=("persist_fraction",),
    needs=(GRAD_NORM,),
    missing="exploding (grad_norm not recorded)",
    remedies=remedies,
)

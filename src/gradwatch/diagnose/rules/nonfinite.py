"""``nonfinite``: inf or NaN values; where one started: the origin of the first step with an inf or NaN.

In this order of evidence (the first that exists at that step decides):

1. a layer whose own weights are non-finite (``weight_norm``) — the first such from the input side;
2. forward evidence (``act_nonfinite``, module hooks on that step): the first layer, in forward order, whose
   output was non-finite;
3. backward evidence (``bwd_nonfinite``, with ``on_nonfinite="locate"``): the first module, in backward order,
   whose input-gradient was non-finite while its output-gradient was finite;
4. none: the layers with a non-finite gradient, output side first, and what to record to know more.

Tied parameters are one layer (the watch lists them once), so a tied output head never makes a layer "first".
"""

from __future__ import annotations

import numpy as np

from gradwatch.diagnose.facts import Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy, pick
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import Signals
from gradwatch.stat_names import ACT_NONFINITE, NONFINITE, WEIGHT_NONFINITE, WEIGHT_NORM


def _counts(s: Signals, name: str) -> np.ndarray:
    v = s.stat(name)
    return np.zeros((len(s.steps), s.n_layers)) if v is None else np.nan_to_num(v, nan=0.0)


def find(ctx: Context) -> Finding | None:
    s, facts = ctx.s, ctx.facts
    h = s.h
    g = _counts(s, NONFINITE)
    a = _counts(s, ACT_NONFINITE) + _counts(s, "fwd_nonfinite")
    b = _counts(s, "bwd_nonfinite")
    counted = s.stat(WEIGHT_NONFINITE)
    if counted is not None:  # non-finite weight elements, counted (an overflowing norm of finite weights is 0)
        w_bad = np.nan_to_num(counted, nan=0.0) > 0
    else:
        raw_w = s.stat(WEIGHT_NORM)
        w_bad = np.isinf(raw_w) if raw_w is not None else np.zeros_like(g, dtype=bool)
    any_row = (g > 0).any(axis=1) | (a > 0).any(axis=1) | (b > 0).any(axis=1) | w_bad.any(axis=1)
    rows = np.flatnonzero(any_row)
    if not len(rows):
        return None
    r = int(rows[0])
    step = int(s.steps[r])
    n = s.n_layers
    lines = [
        f"{int(g[r].sum())} non-finite gradient elements in {int((g[r] > 0).sum())} of {n} layers at step "
        f"{step}; {len(rows)} of {len(s.steps)} recorded steps have some"
    ]
    skipped = h.meta.get("skipped_steps") or []
    if skipped:
        lines.append(
            f"GradScaler skipped {len(skipped)} of {len(s.steps)} recorded steps (non-finite gradients)"
            + (": every step, so the model never trained" if len(skipped) >= len(s.steps) else "")
        )
    forward_order = s.input_side_first(range(n))
    if w_bad[r].any():
        origin = [c for c in forward_order if w_bad[r, c]]
        where = f"layer {h.layers[origin[0]]}'s own weights are non-finite"
        evidence = "weights"
    elif (a[r] > 0).any():
        origin = [c for c in forward_order if a[r, c] > 0]
        where = f"layer {h.layers[origin[0]]} is the first, in forward order, whose output was non-finite"
        evidence = "forward"
    elif (b[r] > 0).any():
        origin = [c for c in reversed(forward_order) if b[r, c] > 0]
        where = (
            f"layer {h.layers[origin[0]]} is the first, in backward order, whose input-gradient was non-finite "
            f"while its output-gradient was finite"
        )
        evidence = "backward"
    else:
        origin = [c for c in reversed(forward_order) if g[r, c] > 0] or list(reversed(forward_order))
        where = (
            f"origin unknown: {h.layers[origin[0]]} is the first layer, in backward order, with a non-finite gradient"
        )
        evidence = "none"
        lines.append(
            "no forward or backward evidence was recorded at that step: watch with on_nonfinite='locate' "
            "(a finite check on every module, every step) to name the module where it started"
        )
    names = [h.layers[c] for c in origin]
    return Finding(
        "nonfinite",
        names,
        step,
        where,
        {
            "lines": lines,
            "origin_evidence": evidence,
            "first_row_counts": g[r].tolist(),
            "skipped_steps": list(skipped),
        },
        remedies(facts),
    )


def remedies(f: Facts) -> list[Remedy]:
    return pick(
        ("check_data", "a non-finite input or loss makes every gradient non-finite", True),
        ("lower_lr", "weights that grow until they overflow", True),
        ("clipping", "the loop does not clip the gradient norm yet", not f.clips),
        ("attention_scale", "attention logits are a common overflow point", f.transformer),
        ("init", "a per-layer gain above 1 compounds with depth", not f.transformer),
        ("tbptt", "long products through time overflow", f.recurrent),
    )


RULE = Rule(
    "nonfinite",
    10,
    "non-finite layers",
    find,
    needs=(NONFINITE,),
    missing="non-finite values (nonfinite not recorded)",
    remedies=remedies,
)

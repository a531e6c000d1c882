"""``vanishing``: the layers nearest the input get a tiny share of the relative gradient of the layers nearest
the loss.

"Near the input" means far from the loss in the autograd graph. *Vanishing* is a state of the input side: the
best relative gradient of a layer **and of every layer farther from the loss** is below ``vanishing_ratio`` of
the median of the quarter of the layers nearest the loss (``vanishing_ratio_residual`` with skip connections,
whose identity paths carry the gradient past the blocks: there a gap between head and body is no chain
decay) — so one small layer among healthy ones is not vanishing, and one large head is no reference. Lookup
tables, normalisation layers and attention's query/key projections have gradients of another scale and are left
out of that comparison. It is reported as episodes (from a step below the threshold while the ratio stays below
its square root): the steps it lasted and when it recovered. Under an adaptive optimizer, which rescales the
gradient, only a vanishing from initialisation is reported; a gradient that shrinks as training converges is not
an obstacle there.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field

from gradwatch.config import StrictModel
from gradwatch.diagnose.facts import NORM_KINDS, RECURRENT, Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.gains import as_recurrent, gains, reach
from gradwatch.diagnose.notes import unowned_layers
from gradwatch.diagnose.remedies import Remedy, pick
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import Signals, episodes, fmt, nanmax, nanmedian
from gradwatch.probe.history import History
from gradwatch.stat_names import UPDATE_RATIO, WEIGHT_NORM


class Limits(StrictModel):
    """The thresholds this rule owns (fields of :class:`gradwatch.diagnose.Thresholds`)."""

    vanishing_ratio: float = Field(
        1e-2,
        gt=0,
        lt=1,
        description="[1e-2] vanishing: the best relative gradient of a layer and every layer farther from the loss "
        "is below this fraction of the median relative gradient of the quarter of the layers nearest the "
        "loss (SageMaker Debugger's VanishingGradient rule uses an absolute 1e-7; a ratio is independent "
        "of the loss scale, and a median of one large head)",
    )
    vanishing_ratio_residual: float = Field(
        1e-4,
        gt=0,
        lt=1,
        description="[1e-4] the same for a model with skip connections (ResNets, transformers): identity paths carry "
        "the gradient past every block, so the usual gap between a head and the body is not a decay "
        "through depth; only a far larger one is reported",
    )


LOOKUP_KINDS = ("Embedding", "EmbeddingBag")  # lookup tables: a sparse gradient and their own init scale
SMALL_GROUP = 4  # in a group of fewer layers (sharing an optimizer and a loss) the reference is one layer, the head:
#                 there one step's dip is noise, the median over the episode must be below the threshold
DEPTH_SLACK = 0.1  # layers this fraction of the depth range nearer the loss still count as "at" a layer's depth
ATTENTION_SCORES = re.compile(r"(^|\.)(query|key|q_proj|k_proj|q_lin|k_lin)$")


def _comparable(h: History) -> np.ndarray:
    """Layers whose relative gradient the vanishing rule compares: not lookup tables, not normalisation layers
    (their weights start at one, their gradient follows the layer they normalise), not attention's query/key
    projections (their gradient passes through the softmax: tiny while attention is uniform, at any depth)."""
    kinds = [k or "" for k in h.kinds]
    return np.array(
        [
            k not in LOOKUP_KINDS and not NORM_KINDS.search(k) and not ATTENTION_SCORES.search(n)
            for n, k in zip(h.layers, kinds)
        ],
        dtype=bool,
    ) & ~unowned_layers(h)  # nothing steps those


def _envelope(s: Signals, rel: np.ndarray, members: list[int]) -> np.ndarray:
    """Per step and layer of ``members``: the best relative gradient among the layer and every member farther from
    the loss (or within ``DEPTH_SLACK`` of its depth: a query projection sits a few nodes deeper than its value
    projection). ``[steps, len(members)]``."""
    depth = s.depth[members]
    slack = DEPTH_SLACK * (depth.max() - depth.min())
    sub = rel[:, members]
    out = np.empty_like(sub)
    for j in range(len(members)):
        out[:, j] = nanmax(sub[:, depth >= depth[j] - slack], axis=1)
    return out


def find(ctx: Context) -> Finding | None:
    s, t, facts = ctx.s, ctx.t, ctx.facts
    assert s.rel is not None  # the rule needs weight_norm
    # compared: matrices of layers that share an optimizer and a loss (not lookup tables, norms, vectors, attention
    # scores, or layers no watched optimizer steps)
    comparable = _comparable(s.h) & ~s.vector & np.array([g is not None for g in s.group], dtype=bool)
    rel = np.where(comparable[None, :], s.rel, np.nan)
    ratio = np.full_like(rel, np.nan)
    usable = np.zeros_like(rel, dtype=bool)
    tops: dict[int, list[int]] = {}
    small: set[int] = set()  # layers of groups whose reference is one layer
    for key in dict.fromkeys(g for g in s.group if g is not None):
        members = [c for c in range(s.n_layers) if comparable[c] and s.group[c] == key]
        if len(members) < 3:
            continue
        if len(members) < SMALL_GROUP:
            small.update(members)
        valid = np.isfinite(rel[:, members])
        enough = valid.sum(axis=1) >= 3
        # the reference: the median relative gradient of the quarter of the members nearest the loss (robust to
        # one large head, near enough to the output to see a decay that spans the whole depth)
        ranked = [c for c in s.input_side_first(members)[::-1] if not s.static[c]]
        if not ranked:
            continue
        top = ranked[: max(1, -(-len(ranked) // 4))]
        ref = nanmedian(rel[:, top], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio[:, members] = _envelope(s, rel, members) / ref[:, None]
        usable[:, members] = valid & enough[:, None]
        tops.update((c, top) for c in members)
    own = ctx.limits(Limits)
    limit = own.vanishing_ratio_residual if facts.residual else own.vanishing_ratio
    strict = usable & (ratio < limit)
    loose = usable & (ratio < np.sqrt(limit))  # an episode lasts while the ratio stays this low
    min_len = min(t.min_episode, len(s.steps))
    runs = [(a, b) for a, b in episodes(loose.any(axis=1)) if b - a + 1 >= min_len and strict[a : b + 1].any()]
    if facts.adaptive:  # Adam rescales the gradient: a shrinking one later in training (converging) is no obstacle;
        runs = [(a, b) for a, b in runs if a == 0]  # one from initialisation means updates driven by noise
    if not runs:
        return None
    in_runs = np.zeros(len(s.steps), dtype=bool)
    for a, b in runs:
        in_runs[a : b + 1] = True
    held = (loose[in_runs].sum(axis=0) >= 0.5 * in_runs.sum()) & strict[in_runs].any(axis=0)
    cols = s.input_side_first(np.flatnonzero(held)) or s.input_side_first(np.flatnonzero(strict[in_runs].any(axis=0)))
    cols = [c for c in cols if c not in small or nanmedian(ratio[in_runs, c]) < limit]
    if not cols:
        return None
    h = s.h
    top = tops[cols[0]]
    r = nanmedian(ratio[in_runs][:, cols], axis=0)
    span = [(int(s.steps[a]), int(s.steps[b])) for a, b in runs]
    last = runs[-1][1]
    recovered = int(s.steps[last + 1]) if last + 1 < len(s.steps) else None
    lines = [
        f"layer {h.layers[c]}: the best ‖g‖/‖θ‖ at or below it is {fmt(v)} of the output-side layers' "
        f"median ({', '.join(h.layers[c] for c in top)})"
        for c, v in zip(cols, r)
    ]
    lines.append(
        "steps "
        + ", ".join(f"{a}–{b}" if a != b else f"{a}" for a, b in span)
        + (f"; recovered at step {recovered}" if recovered is not None else "; still vanishing at the end")
    )
    if facts.adaptive and UPDATE_RATIO in h.stats:
        u = nanmedian(h.stat(UPDATE_RATIO)[in_runs][:, cols])
        if np.isfinite(u):
            lines.append(
                f"under {', '.join(h.meta.get('optimizers') or ['an adaptive optimizer'])} these layers "
                f"still move by {fmt(float(u))} of their weights per step (the optimizer rescales the "
                f"gradient), so the vanishing slows them less than under SGD"
            )
    chain = reach(h)
    if chain is not None:
        lines += [
            f"the gradient reaching layer {h.layers[c]}'s output is {fmt(v)}× the one at the output layer "
            f"(product of the backward gains after it)"
            for c, v in zip(cols, nanmedian(chain[:, cols], 0))
        ]
    gain_lines, gain_parts, act_limited = gains(h)
    names = [h.layers[c] for c in cols]
    summary = (
        f"{len(names)} layer(s) nearest the input get at most {fmt(float(nanmax(r)))} of the relative "
        f"gradient ‖g‖/‖θ‖ of the layers nearest the loss (threshold {limit:g})"
    )
    recurrent = any(h.kinds[c] in RECURRENT for c in cols)
    return Finding(
        "vanishing",
        names,
        span[0][0],
        summary,
        {
            "lines": lines + gain_lines,
            "ratio_to_output_side": r.tolist(),
            "steps": span,
            "reference_layers": [h.layers[c] for c in top],
            "recovered_at": recovered,
            **gain_parts,
        },
        remedies(facts if not recurrent else as_recurrent(facts), activation_limited=act_limited),
    )


def remedies(f: Facts, *, activation_limited: bool | None = None) -> list[Remedy]:
    """``activation_limited``: True when the activation-derivative part of the backward gain is the smaller
    factor, False when the weights' part is, None when unknown."""
    sat_only = f.saturating and not f.relu_family
    if f.recurrent:
        return pick(
            ("lstm", "a plain recurrent layer multiplies the gradient by W_recᵀ·diag(σ') every time step", not f.gated),
            ("recurrent_init", "the per-step factor of the recurrence sets how fast the gradient decays", True),
            ("esn", "only the readout would be trained", not f.gated),
            ("tbptt", "shorter backpropagation paths", True),
        )
    act_first = activation_limited if activation_limited is not None else sat_only
    entries = [
        ("activation", "these layers use a saturating activation (σ' ≤ 1/4 for the sigmoid)", sat_only),
        ("init", "the weights' part of each layer's backward gain is below 1", True),
    ]
    if not act_first:
        entries.reverse()
    return pick(
        *entries,
        ("init_scale", "a transformer's residual stack is sensitive to its initial scale", f.transformer),
        ("norm_placement", "attention stacks with post-LN starve their early layers", f.transformer),
        ("batchnorm", "the model has no normalisation layer", not f.normalised),
        ("residual", "the model has no skip connection", f.residual is False),
        (
            "warmup",
            "under Adam the early layers recover once the first steps settle",
            bool(f.adaptive) and f.transformer,
        ),
        ("pretraining", "a last resort for deep stacks without skip connections", f.residual is False),
    )


RULE = Rule(
    "vanishing",
    40,
    "vanishing layers",
    find,
    limits=Limits,
    shared=("min_episode",),
    needs=(WEIGHT_NORM,),
    missing="vanishing (weight_norm not recorded: the relative gradient ‖g‖/‖θ‖ needs it)",
    remedies=remedies,
)

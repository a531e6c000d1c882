"""Findings from a :class:`~gradwatch.probe.History`: which layers vanish, explode, take too-large steps,
saturate, die, go non-finite or stop moving; since which step, on what evidence, and what to change.

How the rules judge (DESIGN.md, "How diagnosis should judge"; every threshold is a field of :class:`Thresholds`;
every rule is judged on the labelled zoo of benchmarks/zoo/):

* Layers are compared through scale-free numbers: the relative gradient ‖g‖/‖θ‖ and the update ratio ‖Δθ‖/‖θ‖,
  never per-element mean |g| across layers of different type and size.
* "Near the input" means far from the loss in the autograd graph. *Vanishing* is a state of the input side: the
  best relative gradient of a layer **and of every layer farther from the loss** is below ``vanishing_ratio`` of
  the median of the quarter of the layers nearest the loss (``vanishing_ratio_residual`` with skip connections,
  whose identity paths carry the gradient past the blocks: there a gap between head and body is no chain
  decay) — so one small layer among healthy ones is not vanishing, and one large head is no reference. Lookup tables, normalisation layers and attention's query/key
  projections have gradients of another scale and are left out of that comparison. It is reported as episodes
  (from a step below the threshold while the ratio stays below its square root): the steps it lasted and when it
  recovered. Under an adaptive optimizer, which rescales the gradient, only a vanishing from initialisation is
  reported; a gradient that shrinks as training converges is not an obstacle there.
* *Exploding* is an event: the model's gradient norm (before clipping) jumps ``spike_factor`` (under adaptive
  optimizers ``spike_factor_adaptive``) above its recent, whole-run and starting levels, overflows the float type,
  or is ``explode_relative`` times the weights' norm at any step, the first included; with backward gains
  recorded, a chain whose gains multiply above ``exploding_ratio`` too. Growth from a tiny start is neither.
* *Large updates*: an optimizer step changes a layer's weights by more than ``large_update_ratio`` of their norm.
* A parameter without a gradient on a step is unmeasured there (NaN), never vanishing or stalled.
* The non-finite origin follows :mod:`gradwatch.diagnose.nonfinite`.
* Remedies fit the model and loop (:mod:`gradwatch.diagnose.facts`): nothing already there is proposed.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from gradwatch.diagnose.facts import NORM_KINDS, RECURRENT, SATURATING, Facts
from gradwatch.diagnose.findings import KINDS, Diagnosis, Finding
from gradwatch.diagnose.nonfinite import nonfinite
from gradwatch.diagnose.remedies import remedies_for
from gradwatch.diagnose.signals import Signals, episodes, fmt, nanmax, nanmedian
from gradwatch.diagnose.silent.rules import silent_findings, unowned_layers
from gradwatch.diagnose.thresholds import Thresholds
from gradwatch.nn.activations import ACTIVATIONS
from gradwatch.probe.history import History


def _persistent(cond: np.ndarray, measured: np.ndarray, fraction: float) -> np.ndarray:
    """Per layer: the condition holds on ≥ ``fraction`` of the steps where the value was measured."""
    n = measured.sum(axis=0)
    return (n > 0) & (cond.sum(axis=0) >= fraction * np.maximum(n, 1))


def _first_step(s: Signals, cond: np.ndarray, cols) -> int:
    rows = np.flatnonzero(cond[:, list(cols)].any(axis=1))
    return int(s.steps[rows[0]]) if len(rows) else int(s.steps[0])


def _gains(h: History) -> tuple[list[str], dict[str, list[float]], bool | None]:
    """The backward gain of each layer with its activation, split into weights × activation derivative."""
    if not (h.has("backward_gain") and h.has("gain_activation")):
        return [], {}, None
    w = nanmedian(h.stat("backward_gain", sampled_only=True), axis=0)
    a = nanmedian(h.stat("gain_activation", sampled_only=True), axis=0)
    lines, ws, acts = [], [], []
    for name, wi, ai in zip(h.layers, w, a):
        if np.isfinite(wi) and np.isfinite(ai):
            lines.append(f"layer {name} passes back {fmt(wi * ai)} of its gradient: weights {fmt(wi)} × "
                         f"activation derivative {fmt(ai)}")
            ws.append(float(wi))
            acts.append(float(ai))
    with np.errstate(divide="ignore"):  # a dead layer passes back 0: its log is -inf, the comparison still holds
        limited = None if not ws else bool(np.mean(np.log(acts)) < np.mean(np.log(ws)))
    return lines, {"gain_weights": ws, "gain_activation": acts}, limited


def _reach(h: History) -> np.ndarray | None:
    """For a chain of layers with backward gains recorded: the gradient w.r.t. each layer's output over the one
    w.r.t. the last layer's output, the product of the gains after it (seed 000: ∂C/∂b1 = σ'(z1) w2 σ'(z2) …).
    ``[sampled steps, layers]``; None when it cannot be formed."""
    if not (h.meta.get("chain") and h.has("backward_gain") and h.has("gain_activation")):
        return None
    w = h.stat("backward_gain", sampled_only=True)
    a = np.nan_to_num(h.stat("gain_activation", sampled_only=True), nan=1.0)  # no activation module: factor 1
    block = w * a
    reach = np.ones_like(block)
    for l in range(len(h.layers) - 2, -1, -1):
        reach[:, l] = reach[:, l + 1] * block[:, l + 1]
    return reach


LOOKUP_KINDS = ("Embedding", "EmbeddingBag")  # lookup tables: a sparse gradient and their own init scale
SMALL_GROUP = 4  # in a group of fewer layers (sharing an optimizer and a loss) the reference is one layer, the head:
#                 there one step's dip is noise, the median over the episode must be below the threshold
MIN_DEAD_RUN = 3  # consecutive recorded steps a layer's units must be dead (few examples leave rows zero by chance)
DEPTH_SLACK = 0.1  # layers this fraction of the depth range nearer the loss still count as "at" a layer's depth


ATTENTION_SCORES = re.compile(r"(^|\.)(query|key|q_proj|k_proj|q_lin|k_lin)$")


def _comparable(h: History) -> np.ndarray:
    """Layers whose relative gradient the vanishing rule compares: not lookup tables, not normalisation layers
    (their weights start at one, their gradient follows the layer they normalise), not attention's query/key
    projections (their gradient passes through the softmax: tiny while attention is uniform, at any depth)."""
    kinds = [k or "" for k in h.kinds]
    return np.array([k not in LOOKUP_KINDS and not NORM_KINDS.search(k) and not ATTENTION_SCORES.search(n)
                     for n, k in zip(h.layers, kinds)], dtype=bool) & ~unowned_layers(h)  # nothing steps those


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


def _vanishing(s: Signals, t: Thresholds, facts: Facts) -> Finding | None:
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
        top = ranked[:max(1, -(-len(ranked) // 4))]
        ref = nanmedian(rel[:, top], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio[:, members] = _envelope(s, rel, members) / ref[:, None]
        usable[:, members] = valid & enough[:, None]
        tops.update((c, top) for c in members)
    limit = t.vanishing_ratio_residual if facts.residual else t.vanishing_ratio
    strict = usable & (ratio < limit)
    loose = usable & (ratio < np.sqrt(limit))  # an episode lasts while the ratio stays this low
    min_len = min(t.min_episode, len(s.steps))
    runs = [(a, b) for a, b in episodes(loose.any(axis=1))
            if b - a + 1 >= min_len and strict[a:b + 1].any()]
    if facts.adaptive:  # Adam rescales the gradient: a shrinking one later in training (converging) is no obstacle;
        runs = [(a, b) for a, b in runs if a == 0]  # one from initialisation means updates driven by noise
    if not runs:
        return None
    in_runs = np.zeros(len(s.steps), dtype=bool)
    for a, b in runs:
        in_runs[a:b + 1] = True
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
    lines = [f"layer {h.layers[c]}: the best ‖g‖/‖θ‖ at or below it is {fmt(v)} of the output-side layers' "
             f"median ({', '.join(h.layers[c] for c in top)})" for c, v in zip(cols, r)]
    lines.append("steps " + ", ".join(f"{a}–{b}" if a != b else f"{a}" for a, b in span)
                 + (f"; recovered at step {recovered}" if recovered is not None else "; still vanishing at the end"))
    if facts.adaptive and "update_ratio" in h.stats:
        u = nanmedian(h.stat("update_ratio")[in_runs][:, cols])
        if np.isfinite(u):
            lines.append(f"under {', '.join(h.meta.get('optimizers') or ['an adaptive optimizer'])} these layers "
                         f"still move by {fmt(float(u))} of their weights per step (the optimizer rescales the "
                         f"gradient), so the vanishing slows them less than under SGD")
    reach = _reach(h)
    if reach is not None:
        lines += [f"the gradient reaching layer {h.layers[c]}'s output is {fmt(v)}× the one at the output layer "
                  f"(product of the backward gains after it)" for c, v in zip(cols, nanmedian(reach[:, cols], 0))]
    gain_lines, gains, act_limited = _gains(h)
    names = [h.layers[c] for c in cols]
    summary = (f"{len(names)} layer(s) nearest the input get at most {fmt(float(nanmax(r)))} of the relative "
               f"gradient ‖g‖/‖θ‖ of the layers nearest the loss (threshold {limit:g})")
    recurrent = any(h.kinds[c] in RECURRENT for c in cols)
    return Finding("vanishing", names, span[0][0], summary,
                   {"lines": lines + gain_lines, "ratio_to_output_side": r.tolist(), "steps": span,
                    "reference_layers": [h.layers[c] for c in top], "recovered_at": recovered, **gains},
                   remedies_for("vanishing", facts if not recurrent else _recurrent(facts),
                                activation_limited=act_limited))


def _recurrent(facts: Facts) -> Facts:
    from dataclasses import replace

    return replace(facts, recurrent=True)


def _exploding(s: Signals, t: Thresholds, facts: Facts) -> Finding | None:
    h = s.h
    G = s.total_grad
    finite = np.isfinite(G) & (G > 0)
    events: list[tuple[int, str, list[int]]] = []  # (row, why, layers)
    bound = s.scale_bound  # under Adam-like optimizers ‖g‖/‖θ‖ says nothing of the step: those layers are left out
    weight, rel = s.weight, s.rel
    if weight is not None and rel is not None and bound.any():
        g_b = np.where(np.isnan(s.grad[:, bound]), 0.0, s.grad[:, bound])
        w_b = np.where(np.isnan(weight[:, bound]), 0.0, weight[:, bound])
        w_total = np.sqrt(np.sum(w_b ** 2, axis=1))
        # no ratio where no weight norm is known yet (a watch starting at an unsampled step) or where it is 0
        w_total = np.where(np.isnan(weight[:, bound]).all(axis=1) | (w_total == 0), np.nan, w_total)
        with np.errstate(invalid="ignore", divide="ignore"):
            R = np.sqrt(np.sum(g_b ** 2, axis=1)) / w_total
        for i in np.flatnonzero(finite & (R > t.explode_relative)):
            cols = [c for c in range(s.n_layers)
                    if bound[c] and np.isfinite(rel[i, c]) and rel[i, c] > t.explode_relative]
            events.append((int(i), f"the gradient norm is {fmt(float(R[i]))}× the weights' norm (healthy training: "
                                   f"1e-3 to 1)", cols))
    bad = s.stat("nonfinite")
    overflow = np.isinf(G) & ((np.nan_to_num(bad, nan=0.0).sum(axis=1) == 0) if bad is not None else True)
    for i in np.flatnonzero(overflow):  # every element finite, but their norm overflows the float type
        events.append((int(i), "the gradient norm overflows the float type although every element is finite",
                       [c for c in range(s.n_layers) if np.isinf(s.grad[i, c])]))
    med_all = nanmedian(np.where(finite, G, np.nan))
    start = nanmedian(np.where(finite, G, np.nan)[:t.spike_window])  # the run's normal level at its start
    factor = t.spike_factor_adaptive if facts.adaptive else t.spike_factor
    for i in range(3, len(G)):
        if not finite[i]:
            continue
        prev = G[max(0, i - t.spike_window):i]
        prev = prev[np.isfinite(prev) & (prev > 0)]
        if len(prev) < 3:
            continue
        med = float(np.median(prev))
        if G[i] > factor * max(med, med_all, start):  # above the recent, the usual and the starting level
            before = nanmedian(s.grad[max(0, i - t.spike_window):i], axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                jump = s.grad[i] / before
            cols = [c for c in range(s.n_layers) if np.isfinite(jump[c]) and jump[c] > factor]
            events.append((i, f"the gradient norm jumped to {fmt(float(G[i]))}, {fmt(float(G[i] / med))}× its median "
                              f"over the previous {len(prev)} steps", cols))
    reach = _reach(h)
    reach_cols: list[int] = []
    if reach is not None:
        reach_cond = np.isfinite(reach) & (reach > t.exploding_ratio)
        reach_cols = list(np.flatnonzero(_persistent(reach_cond, np.isfinite(reach), t.persist_fraction)))
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
        sampled = np.flatnonzero(~np.isnan(h.stat("backward_gain")).all(axis=1))
        step = int(s.steps[sampled[np.flatnonzero(reach_cond[:, reach_cols].any(axis=1))[0]]])
        cols = []
        summary = "each layer passes back more gradient than it receives"
    if reach_cols:
        r = nanmedian(reach[:, reach_cols], axis=0)
        lines += [f"the gradient reaching layer {h.layers[c]}'s output is {fmt(v)}× the one at the output layer "
                  f"(product of the backward gains after it)" for c, v in zip(reach_cols, r)]
    if facts.clips:
        lines.append("values before clipping (grad_norm_preclip): the loop clips, the model produced these")
    cols = s.input_side_first(set(cols) | set(reach_cols)) or s.input_side_first(
        [c for c in range(s.n_layers) if np.isfinite(s.grad[events[0][0], c])] if events else [])
    gain_lines, gains, _ = _gains(h)
    recurrent = any(h.kinds[c] in RECURRENT for c in cols)
    return Finding("exploding", [h.layers[c] for c in cols], step, summary,
                   {"lines": lines + gain_lines, "event_steps": [int(s.steps[r]) for r, _, _ in events], **gains},
                   remedies_for("exploding", facts if not recurrent else _recurrent(facts)))


def _vector_updates(s: Signals, t: Thresholds, u: np.ndarray, w: np.ndarray, weight_ok: np.ndarray
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


def _large_updates(s: Signals, t: Thresholds, facts: Facts) -> Finding | None:
    u = s.stat("update_ratio")
    if u is None or s.weight is None or s.weight_ok is None:
        return None
    u, ok = _vector_updates(s, t, u, s.weight, s.weight_ok)
    cond = np.isfinite(u) & ok & (u > t.large_update_ratio)
    cols = s.input_side_first(np.flatnonzero(cond.any(axis=0)))
    if not cols:
        return None
    h = s.h
    peak = nanmax(np.where(cond, u, np.nan)[:, cols], axis=0)
    step = _first_step(s, cond, cols)
    lines = [f"layer {h.layers[c]}: ‖Δθ‖/‖θ‖ up to {fmt(v)}" for c, v in zip(cols, peak)]
    n_steps = int(cond.any(axis=1).sum())
    lines.append(f"{n_steps} of {int(np.isfinite(u).any(axis=1).sum())} measured steps have such updates")
    return Finding("large_updates", [h.layers[c] for c in cols], step,
                   f"an optimizer step changed {len(cols)} layer(s)' weights by up to {fmt(float(nanmax(peak)))}× their "
                   f"norm (healthy: about 1e-3)", {"lines": lines, "update_ratio": peak.tolist()},
                   remedies_for("large_updates", facts))


def _stalled(s: Signals, t: Thresholds, facts: Facts) -> Finding | None:
    u = s.stat("update_ratio")
    if u is None or s.weight_ok is None:
        return None
    measured = np.isfinite(u) & s.weight_ok
    cond = measured & (u < t.stalled_ratio)
    cols = s.input_side_first(np.flatnonzero(_persistent(cond, measured, t.persist_fraction)))
    if not cols:
        return None
    h = s.h
    med = nanmedian(np.where(measured, u, np.nan)[:, cols], axis=0)
    return Finding("stalled_updates", [h.layers[c] for c in cols], _first_step(s, cond, cols),
                   f"each optimizer step changes these layers' weights by less than {t.stalled_ratio:g} of their norm",
                   {"lines": [f"layer {h.layers[c]}: ‖Δθ‖/‖θ‖ = {fmt(m)}" for c, m in zip(cols, med)],
                    "update_ratio": med.tolist()}, remedies_for("stalled_updates", facts))


def _fraction_rule(s: Signals, t: Thresholds, facts: Facts, stat: str, limit: float, kind: str, what: str,
                   eligible: np.ndarray) -> Finding | None:
    h = s.h
    v = np.where(eligible[None, :], h.stat(stat), np.nan)
    measured = np.isfinite(v)
    cond = measured & (v > limit)
    cols = s.input_side_first(np.flatnonzero(_persistent(cond, measured, t.persist_fraction)))
    if not cols:
        return None
    med = nanmedian(v[:, cols], axis=0)
    names = [h.layers[c] for c in cols]
    lines = [f"layer {h.layers[c]} ({h.activations[c] or h.kinds[c]}): {m:.0%} {what}" for c, m in zip(cols, med)]
    return Finding(kind, names, _first_step(s, cond, cols), f"more than {limit:.0%} {what} in {len(names)} layer(s)",
                   {"lines": lines, stat: med.tolist()}, remedies_for(kind, facts))


def _dead_units(s: Signals, t: Thresholds, facts: Facts, eligible: np.ndarray) -> Finding | None:
    """Dead units from the weight gradient (``grad_dead``: rows of ∂L/∂W and bias entries exactly zero over the
    batch, whatever activation) where measured, from the activations (``act_dead``) elsewhere; only runs of
    ``MIN_DEAD_RUN`` recorded steps count. A layer behind a dead layer nearer the loss whose rows are zero because
    nothing reaches it (its whole gradient zero, or its activation hooks see its units alive) is not named."""
    h = s.h
    g = s.stat("grad_dead")
    a = s.stat("act_dead")
    a = np.where(eligible[None, :], a, np.nan) if a is not None else None
    v = g if g is not None else np.full((len(s.steps), s.n_layers), np.nan)
    if a is not None:
        per_layer_grad = np.isfinite(v).any(axis=0)
        v = np.where(per_layer_grad[None, :], v, a)
    measured = np.isfinite(v)
    cond = measured & (v > t.dead_fraction)
    run = min(MIN_DEAD_RUN, len(s.steps))
    lasting = np.zeros_like(cond)
    for c in range(s.n_layers):  # only runs of at least `run` dead recorded steps count
        for a0, b0 in episodes(cond[:, c]):
            if b0 - a0 + 1 >= run:
                lasting[a0:b0 + 1, c] = True
    cond = lasting
    cols = s.input_side_first(np.flatnonzero(_persistent(cond, measured, t.persist_fraction)))
    if g is not None and len(cols) > 1:
        def starved(c: int) -> bool:
            """Behind a layer nearer the loss that is dead on each of its dead steps, and either every row of its
            gradient is zero there or its activation hooks saw its units alive: no gradient reaches it, its units
            are not dead."""
            nearer = [d for d in cols if s.depth[d] < s.depth[c]]
            rows = np.flatnonzero(cond[:, c])
            if not nearer or not all(cond[r, nearer].any() for r in rows):
                return False
            seen = a[rows, c][np.isfinite(a[rows, c])] if a is not None else np.zeros(0)
            return bool((g[rows, c] >= 1.0).all() or (len(seen) and np.median(seen) <= t.dead_fraction))
        cols = [c for c in cols if not starved(c)]
    if not cols:
        return None
    med = nanmedian(np.where(measured, v, np.nan)[:, cols], axis=0)
    sources = {name: nanmedian(x[:, cols], axis=0).tolist() for name, x in (("grad_dead", g), ("act_dead", a))
               if x is not None}
    lines = []
    for c, m in zip(cols, med):
        source = "rows of ∂L/∂W exactly zero" if g is not None and np.isfinite(g[:, c]).any() else "zero outputs"
        line = f"layer {h.layers[c]}: {m:.0%} of its units dead ({source} over the batch)"
        if a is not None and g is not None and np.isfinite(a[:, c]).any():
            line += f"; its activation hooks saw {nanmedian(a[:, c]):.0%}"
        lines.append(line)
    return Finding("dead_units", [h.layers[c] for c in cols], _first_step(s, cond, cols),
                   f"more than {t.dead_fraction:.0%} of the units are dead (no active path to the loss for the whole "
                   f"batch) in {len(cols)} layer(s)", {"lines": lines, "dead_fraction": med.tolist(), **sources},
                   remedies_for("dead_units", facts))


def _unmeasured(s: Signals) -> str:
    """Why these statistics give no verdict, or "" when they do."""
    h = s.h
    meta = h.meta
    if meta.get("optimizers") and all(o is None for o in (meta.get("optimizer_of") or [0])):
        return ("not enough evidence: no watched optimizer steps any of this model's parameters (the optimizer "
                "passed to watch() belongs to another model)")
    grad = h.stat("grad_norm") if h.has("grad_norm") else None
    bad = s.stat("nonfinite")
    seen_bad = bad is not None and bool((np.nan_to_num(bad, nan=0.0) > 0).any())
    if grad is None or not np.isfinite(grad).any() and not seen_bad:
        disabled = meta.get("disabled") or {}
        why = f" (switched off: {'; '.join(f'{k}: {v}' for k, v in list(disabled.items())[:2])})" if disabled else ""
        return f"not enough evidence: no gradient statistic was measured on any of {len(s.steps)} steps{why}"
    return ""


def diagnose(history: History, **thresholds: Any) -> Diagnosis:
    """Findings of every kind that the recorded statistics allow; see :class:`Thresholds` for the keywords."""
    t = Thresholds(**thresholds)
    h = history
    if len(h) == 0:
        return Diagnosis([], t, ["nothing: no step was recorded"],
                         unmeasured="not enough evidence: no step was recorded (diagnose after training steps)")
    s = Signals(h, t)
    facts = Facts.of(h)
    findings: list[Finding | None] = []
    not_checked: list[str] = []

    def need(stat: str, why: str) -> bool:
        if h.has(stat):
            return True
        not_checked.append(why)
        return False

    if need("nonfinite", "non-finite values (nonfinite not recorded)"):
        findings.append(nonfinite(s, facts))
    if need("grad_norm", "exploding (grad_norm not recorded)"):
        findings.append(_exploding(s, t, facts))
    if need("weight_norm", "vanishing (weight_norm not recorded: the relative gradient ‖g‖/‖θ‖ needs it)"):
        findings.append(_vanishing(s, t, facts))
    if need("update_ratio", "too-large and stalled updates (watch with an optimizer to record update_ratio)"):
        findings += [_large_updates(s, t, facts), _stalled(s, t, facts)]
    acts = np.asarray([a or "" for a in h.activations], dtype=object)
    kinds = np.asarray(h.kinds, dtype=object)
    if need("act_saturation", "saturation (record activation statistics: stats='full')"):
        eligible = np.isin(acts, SATURATING) | np.isin(kinds, RECURRENT)
        findings.append(_fraction_rule(s, t, facts, "act_saturation", t.saturation_fraction, "saturation",
                                       "of the activation inputs have σ' below 1% of its maximum", eligible))
    if h.has("grad_dead") or need("act_dead", "dead units (record activation statistics: stats='full')"):
        eligible = np.isin(acts, tuple(ACTIVATIONS)) & ~np.isin(acts, SATURATING)
        findings.append(_dead_units(s, t, facts, eligible))
    findings += silent_findings(h)
    notes = []
    if facts.describe():
        notes.append(facts.describe() + ": remedies leave those out")
    order = {k: i for i, k in enumerate(KINDS)}
    found = sorted((f for f in findings if f is not None), key=lambda f: order[f.kind])
    return Diagnosis(found, t, not_checked, notes, unmeasured=_unmeasured(s))

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
DEPTH_SLACK = 0.1  # layers this fraction of the depth range nearer the loss still count as "at" a layer's depth


ATTENTION_SCORES = re.compile(r"(^|\.)(query|key|q_proj|k_proj|q_lin|k_lin)$")


def _comparable(h: History) -> np.ndarray:
    """Layers whose relative gradient the vanishing rule compares: not lookup tables, not normalisation layers
    (their weights start at one, their gradient follows the layer they normalise), not attention's query/key
    projections (their gradient passes through the softmax: tiny while attention is uniform, at any depth)."""
    kinds = [k or "" for k in h.kinds]
    return np.array([k not in LOOKUP_KINDS and not NORM_KINDS.search(k) and not ATTENTION_SCORES.search(n)
                     for n, k in zip(h.layers, kinds)], dtype=bool) & ~unowned_layers(h)  # nothing steps those


def _envelope(s: Signals, rel: np.ndarray) -> np.ndarray:
    """Per step and layer: the best relative gradient among the layer and every layer farther from the loss (or
    within ``DEPTH_SLACK`` of its depth: a query projection sits a few nodes deeper than its value projection)."""
    depth = s.depth
    slack = DEPTH_SLACK * (depth.max() - depth.min())
    out = np.empty_like(rel)
    for l in range(s.n_layers):
        out[:, l] = nanmax(rel[:, depth >= depth[l] - slack], axis=1)
    return out


def _vanishing(s: Signals, t: Thresholds, facts: Facts) -> Finding | None:
    comparable = _comparable(s.h)
    rel = np.where(comparable[None, :], s.rel, np.nan)
    valid = np.isfinite(rel)
    enough = valid.sum(axis=1) >= 3
    # the reference: the median relative gradient of the quarter of the layers nearest the loss (robust to one
    # large head, near enough to the output to see a decay that spans the whole depth)
    ranked = [c for c in s.input_side_first(range(s.n_layers))[::-1] if comparable[c]]
    top = ranked[:max(1, -(-len(ranked) // 4))]
    ref = nanmedian(rel[:, top], axis=1)
    env = _envelope(s, rel)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = env / ref[:, None]
    usable = valid & enough[:, None]
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
    h = s.h
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
    W = s.total_weight
    if W is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            R = G / W
        for i in np.flatnonzero(finite & (R > t.explode_relative)):
            cols = [c for c in range(s.n_layers) if np.isfinite(s.rel[i, c]) and s.rel[i, c] > t.explode_relative]
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


def _large_updates(s: Signals, t: Thresholds, facts: Facts) -> Finding | None:
    u = s.stat("update_ratio")
    if u is None or s.weight_ok is None:
        return None
    cond = np.isfinite(u) & s.weight_ok & (u > t.large_update_ratio)
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


def diagnose(history: History, **thresholds: Any) -> Diagnosis:
    """Findings of every kind that the recorded statistics allow; see :class:`Thresholds` for the keywords."""
    t = Thresholds(**thresholds)
    h = history
    if len(h) == 0:
        return Diagnosis([], t, ["nothing: no step was recorded"])
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
    if need("act_dead", "dead units (record activation statistics: stats='full')"):
        eligible = np.isin(acts, tuple(ACTIVATIONS)) & ~np.isin(acts, SATURATING)
        findings.append(_fraction_rule(s, t, facts, "act_dead", t.dead_fraction, "dead_units",
                                       "of the units are zero for the whole batch", eligible))
    findings += silent_findings(h)
    notes = []
    if facts.describe():
        notes.append(facts.describe() + ": remedies leave those out")
    order = {k: i for i, k in enumerate(KINDS)}
    found = sorted((f for f in findings if f is not None), key=lambda f: order[f.kind])
    return Diagnosis(found, t, not_checked, notes)

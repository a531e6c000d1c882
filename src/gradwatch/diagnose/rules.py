"""Findings from a :class:`~gradwatch.probe.History`: which layers vanish, explode, saturate, die, go
non-finite or stop moving, since which step, on what evidence, and what to change.

Every threshold is a named field of :class:`Thresholds` with its default documented there. A condition must hold
on at least ``persist_fraction`` of the steps where it could be measured (so one noisy step is not a finding);
the finding's ``step`` is the first step where it held. Non-finite values are reported from their first step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import warnings

import numpy as np
from pydantic import Field

from gradwatch.config import StrictModel
from gradwatch.nn.activations import ACTIVATIONS
from gradwatch.diagnose.remedies import Remedy, ranked
from gradwatch.probe.history import History

KINDS = ("nonfinite", "exploding", "vanishing", "saturation", "dead_units", "stalled_updates")
SATURATING = ("sigmoid", "tanh", "softsign")


class Thresholds(StrictModel):
    """When a per-layer number becomes a finding. Defaults in brackets.

    The gradient *scale* of a layer is its ``grad_abs_mean`` (mean |∂L/∂θ|, seed 001's table); it is compared with
    the output-side layer's (the last layer in the history) at the same step.
    """

    vanishing_ratio: float = Field(1e-2, gt=0, description="[1e-2] scale / output layer's scale below this: vanishing")
    exploding_ratio: float = Field(1e2, gt=0, description="[1e2] scale / output layer's scale above this: exploding")
    growth_ratio: float = Field(1e3, gt=1, description="[1e3] grad_norm / its first recorded value above this: "
                                                       "exploding over time")
    saturation_fraction: float = Field(0.5, gt=0, le=1, description="[0.5] act_saturation above this: saturation")
    dead_fraction: float = Field(0.5, gt=0, le=1, description="[0.5] act_dead above this: dead units")
    stalled_ratio: float = Field(1e-5, gt=0, description="[1e-5] update_ratio below this: stalled updates")
    persist_fraction: float = Field(0.5, gt=0, le=1, description="[0.5] share of measured steps a condition must "
                                                                 "hold on")


@dataclass
class Finding:
    """One diagnosed problem: its kind, the layers (input side first), the first step, the numbers, remedies."""

    kind: str
    layers: list[str]
    step: int
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedies: list[Remedy] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.kind.upper()} in {', '.join(self.layers)} (from step {self.step}): {self.summary}"]
        lines += [f"    {line}" for line in self.evidence.get("lines", [])]
        if self.remedies:
            lines.append("  remedies, most relevant first:")
            lines += [f"    {i}. {r}" for i, r in enumerate(self.remedies, 1)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layers": self.layers, "step": self.step, "summary": self.summary,
                "evidence": self.evidence, "remedies": [vars(r) for r in self.remedies]}


@dataclass
class Diagnosis:
    findings: list[Finding]
    thresholds: Thresholds
    not_checked: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.findings

    def kinds(self) -> list[str]:
        return [f.kind for f in self.findings]

    def __getitem__(self, kind: str) -> Finding:
        for f in self.findings:
            if f.kind == kind:
                return f
        raise KeyError(f"no {kind!r} finding; found: {', '.join(self.kinds()) or 'none'}")

    def __str__(self) -> str:
        head = ("healthy: no vanishing, exploding, saturated, dead or non-finite layers found" if self.healthy
                else f"{len(self.findings)} finding(s): {', '.join(self.kinds())}")
        parts = [head, *map(str, self.findings)]
        if self.not_checked:
            parts.append("not checked: " + "; ".join(self.not_checked))
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "findings": [f.to_dict() for f in self.findings],
                "not_checked": self.not_checked, "thresholds": self.thresholds.to_dict()}


def _nanmedian(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """np.nanmedian without the warning for all-NaN columns (they stay NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis)


def _fmt(v: float) -> str:
    return f"{v:.2g}" if 1e-2 <= abs(v) < 1e3 else f"{v:.1e}"


def _persistent(cond: np.ndarray, measured: np.ndarray, fraction: float) -> np.ndarray:
    """Per layer: the condition holds on ≥ ``fraction`` of the steps where the value was measured."""
    n = measured.sum(axis=0)
    return (n > 0) & (cond.sum(axis=0) >= fraction * np.maximum(n, 1))


def _first_step(h: History, cond: np.ndarray, cols: np.ndarray) -> int:
    rows = np.flatnonzero(cond[:, cols].any(axis=1))
    return int(h.steps[rows[0]]) if len(rows) else int(h.steps[0])


def _scale_ratio(h: History) -> np.ndarray:
    """grad_abs_mean of each layer over the output-side layer's, per step: ``[steps, layers]``."""
    s = h.stat("grad_abs_mean")
    usable = np.isfinite(s) & (s > 0)
    ref = np.full(len(s), np.nan)
    for t in range(len(s)):  # the last layer with a usable value at that step
        cols = np.flatnonzero(usable[t])
        if len(cols):
            ref[t] = s[t, cols[-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        return s / ref[:, None]


def _gain_lines(h: History) -> tuple[list[str], dict[str, list[float]], float | None]:
    """The backward gain of each layer with its activation, split into weights × activation derivative."""
    if not (h.has("backward_gain") and h.has("gain_activation")):
        return [], {}, None
    w = _nanmedian(h.stat("backward_gain", sampled_only=True), axis=0)
    a = _nanmedian(h.stat("gain_activation", sampled_only=True), axis=0)
    lines, ws, acts = [], [], []
    for name, wi, ai in zip(h.layers, w, a):
        if np.isfinite(wi) and np.isfinite(ai):
            lines.append(f"layer {name} passes back {_fmt(wi * ai)} of its gradient: weights {_fmt(wi)} × "
                         f"activation derivative {_fmt(ai)}")
            ws.append(float(wi))
            acts.append(float(ai))
    limited = None if not ws else bool(np.exp(np.mean(np.log(acts))) < np.exp(np.mean(np.log(ws))))
    return lines, {"gain_weights": ws, "gain_activation": acts}, limited


def _reach(h: History) -> np.ndarray | None:
    """For a chain of layers (``meta["chain"]``) with backward gains recorded: the gradient w.r.t. each layer's
    output (after its activation) over the gradient w.r.t. the last layer's output — the product of the backward
    gains (weights × activation derivative) of the layers after it (seed 000: ∂C/∂b1 = σ'(z1) w2 σ'(z2) …).
    ``[sampled steps, layers]``; None when it cannot be formed."""
    if not (h.meta.get("chain") and h.has("backward_gain") and h.has("gain_activation")):
        return None
    w = h.stat("backward_gain", sampled_only=True)
    a = np.nan_to_num(h.stat("gain_activation", sampled_only=True), nan=1.0)  # no activation module: factor 1
    block = w * a  # [steps, layers]; the first layer's is NaN (its input needs no gradient)
    reach = np.ones_like(block)
    for l in range(len(h.layers) - 2, -1, -1):
        reach[:, l] = reach[:, l + 1] * block[:, l + 1]
    return reach


def _recurrent(h: History, names: list[str]) -> bool:
    kinds = dict(zip(h.layers, h.kinds))
    return any(kinds.get(n, "") in ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell") for n in names)


def _nonfinite(h: History, t: Thresholds) -> Finding | None:
    g = np.nan_to_num(h.stat("nonfinite"))
    a = np.nan_to_num(h.stat("act_nonfinite")) if "act_nonfinite" in h.stats else np.zeros_like(g)
    rows = np.flatnonzero((g > 0).any(axis=1) | (a > 0).any(axis=1))
    if not len(rows):
        return None
    r = rows[0]
    step = int(h.steps[r])
    lines = [f"{int(g[r].sum())} non-finite gradient elements in {int((g[r] > 0).sum())} of {len(h.layers)} layers "
             f"at step {step}; {len(rows)} of {len(h)} recorded steps have some"]
    if (a[r] > 0).any():
        col = int(np.flatnonzero(a[r] > 0)[0])
        where = f"layer {h.layers[col]} is the first (forward order) whose output was non-finite"
    elif (g[r] > 0).any():
        col = int(np.flatnonzero(g[r] > 0)[-1])
        where = f"layer {h.layers[col]} is the first in backward order with a non-finite gradient"
        if (g[r] > 0).all():
            lines.append("every layer's gradient is non-finite: the inf/NaN probably came from the forward pass or "
                         "the loss; record act_nonfinite (stats='full', sample_every=1) to see which layer emitted it")
    else:
        col = 0
        where = "no gradient is non-finite but an activation is"
    names = [h.layers[col]]
    return Finding("nonfinite", names, step, where, {"lines": lines, "first_row_counts": g[r].tolist()},
                   ranked("nonfinite", recurrent=_recurrent(h, names)))


def _exploding(h: History, t: Thresholds) -> Finding | None:
    ratio = _scale_ratio(h)
    measured = np.isfinite(ratio)
    cond = measured & (ratio > t.exploding_ratio)
    cols = np.flatnonzero(_persistent(cond, measured, t.persist_fraction))
    norm = h.stat("grad_norm")
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = norm / norm[:1]
    grow_cond = np.isfinite(growth) & (growth > t.growth_ratio)  # inf/NaN are the nonfinite finding's
    grow_cols = np.flatnonzero(grow_cond.any(axis=0))
    reach = _reach(h)
    reach_cols = np.array([], dtype=int)
    if reach is not None:
        reach_cond = np.isfinite(reach) & (reach > t.exploding_ratio)
        reach_cols = np.flatnonzero(_persistent(reach_cond, np.isfinite(reach), t.persist_fraction))
    if not len(cols) and not len(grow_cols) and not len(reach_cols):
        return None
    lines = []
    if len(reach_cols):
        r = _nanmedian(reach[:, reach_cols], axis=0)
        lines += [f"the gradient reaching layer {h.layers[c]}'s output is {_fmt(v)}× the one at the output layer "
                  f"(product of the backward gains after it)" for c, v in zip(reach_cols, r)]
    if len(cols):
        r = _nanmedian(np.where(cond, ratio, np.nan)[:, cols], axis=0)
        lines += [f"mean |∂L/∂θ| of layer {h.layers[c]} is {_fmt(v)}× the output layer's (median over the steps "
                  f"where it is above {t.exploding_ratio:g}×)" for c, v in zip(cols, r)]
        summary = (f"the gradient grows toward the input: up to {_fmt(float(np.nanmax(r)))}× the output layer's "
                   f"mean |∂L/∂θ|")
        step = _first_step(h, cond, cols)
    elif len(reach_cols):
        summary = (f"each layer passes back more gradient than it receives: the gradient reaching the first "
                   f"layers is {_fmt(float(np.nanmax(r)))}× the output layer's")
        sampled = np.flatnonzero(~np.isnan(h.stat("backward_gain")).all(axis=1))
        step = int(h.steps[sampled[np.flatnonzero(reach_cond[:, reach_cols].any(axis=1))[0]]])
    else:
        summary = f"the gradient norm grew more than {t.growth_ratio:g}× since step {int(h.steps[0])}"
        step = _first_step(h, grow_cond, grow_cols)
    if len(grow_cols):
        g = np.nanmax(np.where(grow_cond, growth, np.nan)[:, grow_cols], axis=0)
        lines += [f"grad_norm of layer {h.layers[c]} grew {_fmt(v)}× since step {int(h.steps[0])}"
                  for c, v in zip(grow_cols, g)]
    gain_lines, gains, _ = _gain_lines(h)
    names = [h.layers[c] for c in sorted(set(cols) | set(grow_cols) | set(reach_cols))]
    return Finding("exploding", names, step, summary, {"lines": lines + gain_lines, **gains},
                   ranked("exploding", recurrent=_recurrent(h, names)))


def _vanishing(h: History, t: Thresholds) -> Finding | None:
    ratio = _scale_ratio(h)
    measured = np.isfinite(ratio)
    cond = measured & (ratio < t.vanishing_ratio)
    cols = np.flatnonzero(_persistent(cond, measured, t.persist_fraction))
    reach = _reach(h)
    if reach is not None:  # the activation gradient may vanish while the weight gradients stay balanced (ReLU)
        reach_cond = np.isfinite(reach) & (reach < t.vanishing_ratio)
        reach_cols = np.flatnonzero(_persistent(reach_cond, np.isfinite(reach), t.persist_fraction))
        cols = np.union1d(cols, reach_cols).astype(int)
    if not len(cols):
        return None
    s = h.stat("grad_abs_mean")
    r = _nanmedian(ratio[:, cols], axis=0)
    lines = [f"mean |∂L/∂θ| of layer {h.layers[c]} is {_fmt(float(_nanmedian(s[:, c])))}, {_fmt(1 / v) + '×' if v > 0 else 'infinitely'} "
             f"smaller than the output layer's" for c, v in zip(cols, r)]
    per_layer = None
    if len(h.layers) > 1:
        first = _nanmedian(ratio[:, 0])
        if np.isfinite(first) and first > 0:
            per_layer = float(first ** (-1 / (len(h.layers) - 1)))
            lines.append(f"on average the gradient shrinks {_fmt(per_layer)}× per layer toward the input")
    if reach is not None:
        lines += [f"the gradient reaching layer {h.layers[c]}'s output is {_fmt(v)}× the one at the output layer "
                  f"(product of the backward gains after it)" for c, v in zip(cols, _nanmedian(reach[:, cols]))]
    gain_lines, gains, act_limited = _gain_lines(h)
    names = [h.layers[c] for c in cols]
    saturating = any(h.activations[c] in SATURATING for c in range(len(h.layers)))
    return Finding("vanishing", names, _first_step(h, cond, cols),
                   f"{len(names)} layer(s) near the input get less than {t.vanishing_ratio:g} of the output layer's "
                   f"mean |∂L/∂θ|", {"lines": lines + gain_lines, "ratio_to_output": r.tolist(),
                                     "shrink_per_layer": per_layer, **gains},
                   ranked("vanishing", recurrent=_recurrent(h, names), activation_limited=act_limited,
                          saturating=saturating))


def _fraction_rule(h: History, t: Thresholds, stat: str, limit: float, kind: str, what: str,
                   only: tuple[str, ...] | None = None) -> Finding | None:
    v = h.stat(stat)
    if only is not None:  # e.g. saturation: ReLU's zero half is not saturation (dead units cover it)
        v = np.where(np.isin(np.asarray(h.activations, dtype=object), only), v, np.nan)
    measured = np.isfinite(v)
    cond = measured & (v > limit)
    cols = np.flatnonzero(_persistent(cond, measured, t.persist_fraction))
    if not len(cols):
        return None
    med = _nanmedian(v[:, cols], axis=0)
    names = [h.layers[c] for c in cols]
    lines = [f"layer {h.layers[c]} ({h.activations[c] or 'no activation module'}): {m:.0%} {what}"
             for c, m in zip(cols, med)]
    return Finding(kind, names, _first_step(h, cond, cols), f"more than {limit:.0%} {what} in {len(names)} layer(s)",
                   {"lines": lines, stat: med.tolist()}, ranked(kind, recurrent=_recurrent(h, names)))


def _stalled(h: History, t: Thresholds) -> Finding | None:
    u = h.stat("update_ratio")
    measured = np.isfinite(u)
    cond = measured & (u < t.stalled_ratio)
    cols = np.flatnonzero(_persistent(cond, measured, t.persist_fraction))
    if not len(cols):
        return None
    med = _nanmedian(u[:, cols], axis=0)
    names = [h.layers[c] for c in cols]
    return Finding("stalled_updates", names, _first_step(h, cond, cols),
                   f"each optimizer step changes these layers' weights by less than {t.stalled_ratio:g} of their norm",
                   {"lines": [f"layer {n}: ‖Δθ‖/‖θ‖ = {_fmt(m)}" for n, m in zip(names, med)],
                    "update_ratio": med.tolist()}, ranked("stalled_updates", recurrent=_recurrent(h, names)))


def diagnose(history: History, **thresholds: Any) -> Diagnosis:
    """Findings of every kind that the recorded statistics allow; see :class:`Thresholds` for the keywords."""
    t = Thresholds(**thresholds)
    h = history
    findings: list[Finding | None] = []
    not_checked: list[str] = []
    if len(h) == 0:
        return Diagnosis([], t, ["nothing: no step was recorded"])

    def need(stat: str, why: str) -> bool:
        if h.has(stat):
            return True
        not_checked.append(why)
        return False

    if need("nonfinite", "non-finite values (nonfinite not recorded)"):
        findings.append(_nonfinite(h, t))
    if need("grad_abs_mean", "vanishing/exploding (grad_abs_mean not recorded)") and h.has("grad_norm"):
        findings += [_exploding(h, t), _vanishing(h, t)]
    if need("act_saturation", "saturation (record activation statistics: stats='full')"):
        findings.append(_fraction_rule(h, t, "act_saturation", t.saturation_fraction, "saturation",
                                       "of the activation inputs have σ' below 1% of its maximum", only=SATURATING))
    if need("act_dead", "dead units (record activation statistics: stats='full')"):
        findings.append(_fraction_rule(h, t, "act_dead", t.dead_fraction, "dead_units",
                                       "of the units are zero for the whole batch", only=tuple(ACTIVATIONS)))
    if need("update_ratio", "stalled updates (watch with an optimizer to record update_ratio)"):
        findings.append(_stalled(h, t))
    order = {k: i for i, k in enumerate(KINDS)}
    return Diagnosis(sorted((f for f in findings if f is not None), key=lambda f: order[f.kind]), t, not_checked)

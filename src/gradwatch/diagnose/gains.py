"""Backward gains along depth, shared by the vanishing and exploding rules: each layer's gain split into its
weights' part and its activation derivative, and the product of the gains after a layer in a chain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gradwatch.diagnose.facts import Facts
from gradwatch.diagnose.signals import fmt, nanmedian
from gradwatch.probe.history import History
from gradwatch.stat_names import BACKWARD_GAIN, GAIN_ACTIVATION


def gains(h: History) -> tuple[list[str], dict[str, list[float]], bool | None]:
    """The backward gain of each layer with its activation, split into weights × activation derivative."""
    if not (h.has(BACKWARD_GAIN) and h.has(GAIN_ACTIVATION)):
        return [], {}, None
    w = nanmedian(h.stat(BACKWARD_GAIN, sampled_only=True), axis=0)
    a = nanmedian(h.stat(GAIN_ACTIVATION, sampled_only=True), axis=0)
    lines, ws, acts = [], [], []
    for name, wi, ai in zip(h.layers, w, a):
        if np.isfinite(wi) and np.isfinite(ai):
            lines.append(
                f"layer {name} passes back {fmt(wi * ai)} of its gradient: weights {fmt(wi)} × "
                f"activation derivative {fmt(ai)}"
            )
            ws.append(float(wi))
            acts.append(float(ai))
    with np.errstate(divide="ignore"):  # a dead layer passes back 0: its log is -inf, the comparison still holds
        limited = None if not ws else bool(np.mean(np.log(acts)) < np.mean(np.log(ws)))
    return lines, {"gain_weights": ws, GAIN_ACTIVATION: acts}, limited


def reach(h: History) -> np.ndarray | None:
    """For a chain of layers with backward gains recorded: the gradient w.r.t. each layer's output over the one
    w.r.t. the last layer's output, the product of the gains after it (seed 000: ∂C/∂b1 = σ'(z1) w2 σ'(z2) …).
    ``[sampled steps, layers]``; None when it cannot be formed."""
    if not (h.meta.get("chain") and h.has(BACKWARD_GAIN) and h.has(GAIN_ACTIVATION)):
        return None
    w = h.stat(BACKWARD_GAIN, sampled_only=True)
    a = np.nan_to_num(h.stat(GAIN_ACTIVATION, sampled_only=True), nan=1.0)  # no activation module: factor 1
    block = w * a
    out = np.ones_like(block)
    for l in range(len(h.layers) - 2, -1, -1):
        out[:, l] = out[:, l + 1] * block[:, l + 1]
    return out


def as_recurrent(facts: Facts) -> Facts:
    """The facts of a finding in recurrent layers (their remedies are the recurrent ones)."""
    return replace(facts, recurrent=True)

"""``diagnose(history)``: every registered rule (:mod:`gradwatch.diagnose.rules`) judged on a
:class:`~gradwatch.probe.History`, their findings in the registry's order.

How the rules judge (DESIGN.md, "How diagnosis should judge"; every threshold is a field of :class:`Thresholds`;
every gradient rule is judged on the labelled zoo of benchmarks/zoo/):

* Layers are compared through scale-free numbers: the relative gradient ‖g‖/‖θ‖ and the update ratio ‖Δθ‖/‖θ‖,
  never per-element mean |g| across layers of different type and size.
* A parameter without a gradient on a step is unmeasured there (NaN), never vanishing or stalled.
* Each rule's module says what it finds and on what evidence; remedies fit the model and loop
  (:mod:`gradwatch.diagnose.facts`): nothing already there is proposed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwatch.diagnose.facts import Facts
from gradwatch.diagnose.findings import Diagnosis, Finding
from gradwatch.diagnose.notes import notes
from gradwatch.diagnose.rule import Context
from gradwatch.diagnose.rules import RULES
from gradwatch.diagnose.signals import Signals
from gradwatch.diagnose.thresholds import Thresholds
from gradwatch.probe.history import History
from gradwatch.stat_names import GRAD_NORM, NONFINITE


def _unmeasured(s: Signals) -> str:
    """Why these statistics give no verdict, or "" when they do."""
    h = s.h
    meta = h.meta
    if meta.get("optimizers") and all(o is None for o in (meta.get("optimizer_of") or [0])):
        return (
            "not enough evidence: no watched optimizer steps any of this model's parameters (the optimizer "
            "passed to watch() belongs to another model)"
        )
    grad = h.stat(GRAD_NORM) if h.has(GRAD_NORM) else None
    bad = s.stat(NONFINITE)
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
        return Diagnosis(
            [],
            t,
            ["nothing: no step was recorded"],
            unmeasured="not enough evidence: no step was recorded (diagnose after training steps)",
        )
    s = Signals(h, t)
    facts = Facts.of(h)
    ctx = Context(h, s, t, facts, notes(h))
    found: list[Finding] = []
    not_checked: list[str] = []
    for rule in RULES:
        if rule.needs and not any(h.has(stat) for stat in rule.needs):
            if rule.missing not in not_checked:
                not_checked.append(rule.missing)
            continue
        finding = rule.find(ctx)
        if finding is not None:
            found.append(finding)
    notes_ = [facts.describe() + ": remedies leave those out"] if facts.describe() else []
    return Diagnosis(found, t, not_checked, notes_, unmeasured=_unmeasured(s))

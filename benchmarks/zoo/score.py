"""Scoring: one scenario's verdict against its label, and precision / recall / layer and step accuracy over the zoo.

Counting, per kind, over the scenarios: a *true positive* is an expected finding that the diagnosis made; a *false
negative* an expected one it did not make (or one a scenario declares when the scenario raised); a *false positive* a finding of a kind the label forbids (every kind
on a healthy run; a kind several findings share counts once per scenario). Kinds a label neither expects nor
forbids are not counted. Layer accuracy: of the true positives whose first layer the truth knows, the share whose
``Finding.layers[0]`` is one the label accepts; step accuracy likewise with ``Finding.step``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .label import KINDS, Expect, Label, Run

RECALL_TARGET = 0.9  # issue 9: recall ≥ 0.9 per kind
ACCURACY_TARGET = 1.0  # issue 9: the first layer and the step right wherever the truth is known
# issue 19, on the held-out part (never tuned on): precision and recall ≥ 0.95 per kind, first layer and step right
# on ≥ 95 % of the labelled broken runs
HELD_OUT_TARGETS = {"precision": 0.95, "recall": 0.95, "accuracy": 0.95}
TRAIN_TARGETS = {"precision": None, "recall": RECALL_TARGET, "accuracy": ACCURACY_TARGET}


@dataclass
class Check:
    """One expected finding in one scenario and what the diagnosis made of it."""

    expect: Expect
    found: bool
    layer: str | None = None  # the finding's first layer
    step: int | None = None
    layer_ok: bool | None = None  # None: the truth does not know the layer (or nothing was found)
    step_ok: bool | None = None
    missing_evidence: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.found and self.layer_ok is not False and self.step_ok is not False and not self.missing_evidence

    def problem(self) -> str | None:
        e = self.expect
        if not self.found:
            where = f" in {'/'.join(e.layers)}" if e.layers else ""
            at = f" at step {e.step}" if e.step is not None else ""
            return f"missed {e.kind}{where}{at}"
        parts = []
        if self.layer_ok is False:
            parts.append(f"first layer {self.layer!r}, truth {' or '.join(map(repr, e.layers))}")
        if self.step_ok is False:
            parts.append(f"step {self.step}, truth {e.step}")
        if self.missing_evidence:
            parts.append(f"evidence lacks {', '.join(self.missing_evidence)}")
        return f"{e.kind}: " + "; ".join(parts) if parts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "expect": self.expect.to_dict(),
            "found": self.found,
            "layer": self.layer,
            "step": self.step,
            "layer_ok": self.layer_ok,
            "step_ok": self.step_ok,
            "missing_evidence": list(self.missing_evidence),
            "ok": self.ok,
        }


@dataclass
class Verdict:
    """A scenario's result: its checks, the forbidden findings made, or why it did not run."""

    name: str
    label: Label | None = None
    checks: list[Check] = field(default_factory=list)
    false: list[dict[str, Any]] = field(default_factory=list)  # {"kind", "layers", "step", "summary"}
    reported_healthy: bool | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the scenario raised (an unsupported watch option, a failed premise…)
    skipped: str | None = None  # an optional package is missing
    expects: tuple[str, ...] = ()  # the kinds the scenario declares: counted as missed when it raised
    split: str = "train"  # the zoo's part: "train" (the rules were tuned on it) or "held-out"

    @property
    def passed(self) -> bool:
        if self.skipped:
            return True
        if self.error or self.label is None:
            return False
        if self.label.healthy and not self.reported_healthy:
            return False
        return all(c.ok for c in self.checks) and not self.false

    def problems(self) -> list[str]:
        if self.skipped:
            return [f"skipped: {self.skipped}"]
        if self.error:
            return [f"error: {self.error if len(self.error) <= 200 else self.error[:200] + '…'}"]
        out = [p for c in self.checks if (p := c.problem())]
        out += [
            f"false {f['kind']} in {', '.join(f['layers'][:3])}{'…' if len(f['layers']) > 3 else ''} (step {f['step']})"
            for f in self.false
        ]
        if self.label is not None and self.label.healthy and not self.false and not self.reported_healthy:
            out.append("not reported healthy")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "problems": self.problems(),
            "label": self.label.to_dict() if self.label else None,
            "checks": [c.to_dict() for c in self.checks],
            "false": self.false,
            "reported_healthy": self.reported_healthy,
            "facts": _plain(self.facts),
            "error": self.error,
            "skipped": self.skipped,
            "expects": list(self.expects),
            "split": self.split,
        }


def _plain(x: Any) -> Any:
    """JSON-ready copy of the facts (floats stay floats; NaN/inf as strings)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _step(finding) -> int | None:
    return None if getattr(finding, "step", None) is None else int(finding.step)


def check_expect(expect: Expect, findings: list) -> Check:
    """Match one expected finding: the first finding of its kind (the best one if several: the one whose first
    layer and step are right)."""
    candidates = [f for f in findings if f.kind == expect.kind]
    if not candidates:
        return Check(expect, False)
    checks = []
    for f in candidates:
        layer = f.layers[0] if f.layers else None
        evidence = getattr(f, "evidence", None) or {}
        checks.append(
            Check(
                expect,
                True,
                layer,
                _step(f),
                layer_ok=(layer in expect.layers) if expect.layers else None,
                step_ok=(_step(f) == expect.step) if expect.step is not None else None,
                missing_evidence=tuple(k for k in expect.evidence if evidence.get(k) is None),
            )
        )
    return max(checks, key=lambda c: (c.ok, c.layer_ok is not False, c.step_ok is not False))


def verdict(name: str, run: Run) -> Verdict:
    """Judge ``run.diagnosis`` against ``run.label``."""
    findings = list(run.diagnosis.findings)
    forbid = set(run.label.forbid)
    false, seen = [], set()
    for f in findings:
        if (f.kind in forbid or run.label.healthy) and f.kind not in seen:
            seen.add(f.kind)
            false.append({"kind": f.kind, "layers": list(f.layers), "step": _step(f), "summary": f.summary})
    return Verdict(
        name,
        run.label,
        [check_expect(e, findings) for e in run.label.expect],
        false,
        bool(run.diagnosis.healthy),
        run.facts,
    )


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def summarise_parts(verdicts: list[Verdict]) -> dict[str, dict[str, Any]]:
    """:func:`summarise` of each part of the zoo apart: ``{"train": …, "held-out": …}`` (a part without verdicts
    is left out); the held-out part is held to :data:`HELD_OUT_TARGETS`."""
    out = {}
    for part, targets in (("train", TRAIN_TARGETS), ("held-out", HELD_OUT_TARGETS)):
        mine = [v for v in verdicts if v.split == part]
        if mine:
            out[part] = summarise(mine, **targets)
    return out


def summarise(
    verdicts: list[Verdict],
    precision: float | None = None,
    recall: float = RECALL_TARGET,
    accuracy: float = ACCURACY_TARGET,
) -> dict[str, Any]:
    """Per kind precision and recall, layer and step accuracy, false findings on healthy runs, errors, and
    whether each target is met (issue 9's by default: recall ≥ 0.9, accuracy 1; ``precision`` None: no target)."""
    judged = [v for v in verdicts if v.label is not None and not v.skipped and not v.error]
    crashed = [v for v in verdicts if v.error]
    per_kind = {}
    for kind in KINDS:
        tp = sum(c.found for v in judged for c in v.checks if c.expect.kind == kind)
        fn = sum(not c.found for v in judged for c in v.checks if c.expect.kind == kind) + sum(
            v.expects.count(kind) for v in crashed
        )
        fp = sum(f["kind"] == kind for v in judged for f in v.false)
        per_kind[kind] = {"tp": tp, "fn": fn, "fp": fp, "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn)}
    known_layer = [c for v in judged for c in v.checks if c.layer_ok is not None]
    known_step = [c for v in judged for c in v.checks if c.step_ok is not None]
    healthy_false = [{"scenario": v.name, **f} for v in judged if v.label.healthy for f in v.false]
    healthy_unreported = [v.name for v in judged if v.label.healthy and not v.false and not v.reported_healthy]
    errors = {v.name: v.error for v in verdicts if v.error}
    layer_acc = _ratio(sum(c.layer_ok for c in known_layer), len(known_layer))
    step_acc = _ratio(sum(c.step_ok for c in known_step), len(known_step))
    recall_ok = all(k["recall"] is None or k["recall"] >= recall for k in per_kind.values())
    targets = {"no false findings on healthy runs": not healthy_false and not healthy_unreported}
    if precision is not None:
        targets[f"precision ≥ {precision:g} per kind"] = all(
            k["precision"] is None or k["precision"] >= precision for k in per_kind.values()
        )
    where = "where known" if accuracy >= 1 else f"on ≥ {accuracy:.0%} where known"
    targets.update(
        {
            f"recall ≥ {recall:g} per kind": recall_ok,
            f"first layer right {where}": layer_acc is None or layer_acc >= accuracy,
            f"step right {where}": step_acc is None or step_acc >= accuracy,
            "every scenario ran": not errors,
        }
    )
    return {
        "kinds": per_kind,
        "layer_accuracy": {
            "right": sum(c.layer_ok for c in known_layer),
            "known": len(known_layer),
            "accuracy": layer_acc,
        },
        "step_accuracy": {"right": sum(c.step_ok for c in known_step), "known": len(known_step), "accuracy": step_acc},
        "healthy_false_findings": healthy_false,
        "healthy_not_reported_healthy": healthy_unreported,
        "errors": errors,
        "skipped": {v.name: v.skipped for v in verdicts if v.skipped},
        "passed": [v.name for v in verdicts if v.passed and not v.skipped],
        "failed": [v.name for v in verdicts if not v.passed],
        "targets": targets,
        "targets_met": all(targets.values()),
    }

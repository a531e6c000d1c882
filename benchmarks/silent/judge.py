"""Whether a run's findings name its bug, and the silent-bug findings of the healthy zoo."""

from __future__ import annotations

from dataclasses import dataclass

from gradwatch.diagnose import SILENT_KINDS

from .registry import Truth

WITHIN = 10  # a bug must be found within this many optimizer steps of its first observable step


@dataclass
class Detection:
    name: str
    kind: str
    truth_step: int
    detected: bool
    step: int | None = None
    why: str = ""
    layers: tuple[str, ...] = ()


def judge(name: str, truth: Truth, findings: list[dict]) -> Detection:
    """Detected: a finding of the truth's kind, at a step from the first observable one to ``WITHIN`` steps after
    it, naming exactly the truth's layers (when it names any)."""
    same = [f for f in findings if f["kind"] == truth.kind]
    if not same:
        others = ", ".join(sorted({f["kind"] for f in findings})) or "none"
        return Detection(name, truth.kind, truth.step, False, why=f"no {truth.kind} finding (found: {others})")
    f = same[0]
    if not truth.step <= f["step"] <= truth.step + WITHIN:
        return Detection(name, truth.kind, truth.step, False, f["step"],
                         f"step {f['step']}, outside {truth.step}–{truth.step + WITHIN}", tuple(f["layers"]))
    if truth.layers and set(f["layers"]) != set(truth.layers):
        return Detection(name, truth.kind, truth.step, False, f["step"],
                         f"layers {f['layers']} ≠ {list(truth.layers)}", tuple(f["layers"]))
    return Detection(name, truth.kind, truth.step, True, f["step"], layers=tuple(f["layers"]))


def silent_false(findings: list[dict]) -> list[str]:
    """The silent-bug kinds among a healthy run's findings."""
    return [f["kind"] for f in findings if f["kind"] in SILENT_KINDS]

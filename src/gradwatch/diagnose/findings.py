"""What :func:`gradwatch.diagnose.diagnose` returns: findings with their layers, steps, evidence and remedies."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gradwatch.diagnose.remedies import Remedy

if TYPE_CHECKING:  # assembled from the rule registry, whose rules import this module
    from gradwatch.diagnose.thresholds import Thresholds

WRAP = 116  # the headline and remedy lines are wrapped at this width (the evidence lines are short)


@dataclass
class Finding:
    """One diagnosed problem: its kind, the layers (the origin or the input side first), the first step, the
    numbers behind it and the remedies that fit this model and loop (most relevant first)."""

    kind: str
    layers: list[str]
    step: int
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedies: list[Remedy] = field(default_factory=list)

    def __str__(self) -> str:
        shown = ", ".join(self.layers[:8]) + (f" and {len(self.layers) - 8} more" if len(self.layers) > 8 else "")
        lines = textwrap.wrap(
            f"{self.kind.upper()} in {shown} (from step {self.step}): {self.summary}", WRAP, subsequent_indent="    "
        )
        lines += [f"    {line}" for line in self.evidence.get("lines", [])]
        if self.remedies:
            lines.append("  remedies, most relevant first:")
            for i, r in enumerate(self.remedies, 1):
                lines += textwrap.wrap(f"{i}. {r}", WRAP, initial_indent="    ", subsequent_indent="       ")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "layers": self.layers,
            "step": self.step,
            "summary": self.summary,
            "evidence": self.evidence,
            "remedies": [vars(r) for r in self.remedies],
        }


@dataclass
class Diagnosis:
    findings: list[Finding]
    thresholds: Thresholds
    not_checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unmeasured: str = ""  # why there is not enough evidence for a verdict ("" when there is)

    @property
    def healthy(self) -> bool | None:
        """True: measured and nothing found; False: findings; None: not enough evidence (see ``unmeasured``)."""
        if self.findings:
            return False
        return None if self.unmeasured else True

    def kinds(self) -> list[str]:
        return [f.kind for f in self.findings]

    def __getitem__(self, kind: str) -> Finding:
        for f in self.findings:
            if f.kind == kind:
                return f
        raise KeyError(f"no {kind!r} finding; found: {', '.join(self.kinds()) or 'none'}")

    def __contains__(self, kind: str) -> bool:
        return kind in self.kinds()

    def __str__(self) -> str:
        from gradwatch.diagnose.rules import healthy_sentence  # the rules import this module

        head = (
            healthy_sentence()
            if self.healthy
            else self.unmeasured
            if self.healthy is None
            else f"{len(self.findings)} finding(s): {', '.join(self.kinds())}"
        )
        parts = [head, *map(str, self.findings)]
        parts += [f"note: {n}" for n in self.notes]
        if self.not_checked:
            parts.append("not checked: " + "; ".join(self.not_checked))
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "unmeasured": self.unmeasured,
            "findings": [f.to_dict() for f in self.findings],
            "not_checked": self.not_checked,
            "notes": self.notes,
            "thresholds": self.thresholds.to_dict(),
        }

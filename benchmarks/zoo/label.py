"""What a scenario expects of the diagnosis, and what a scenario run hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradwatch.diagnose import GRADIENT_KINDS

# every kind the zoo judges: the registry's gradient rules (the silent-bug rules have their own benchmark)
KINDS = GRADIENT_KINDS


@dataclass(frozen=True)
class Expect:
    """A finding of ``kind`` that must be in the diagnosis.

    ``layers``: the first layer the finding may name (``Finding.layers[0]``; for nonfinite the origin), any one of
    them; empty when the truth does not single one out. ``step``: the step the finding must carry, when the truth
    knows it. ``evidence``: keys the finding's ``evidence`` must hold (e.g. ``"recovered_at"`` for an episode).
    """

    kind: str
    layers: tuple[str, ...] = ()
    step: int | None = None
    evidence: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Expect.kind={self.kind!r}: expected one of {', '.join(KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layers": list(self.layers), "step": self.step, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class Label:
    """The verdict a scenario must get: findings that must be there (``expect``) and kinds that must not
    (``forbid``). Kinds in neither are tolerated (a vanishing sigmoid stack may also saturate). A healthy run
    forbids every kind and must also be reported healthy."""

    expect: tuple[Expect, ...] = ()
    forbid: tuple[str, ...] = KINDS

    def __post_init__(self):
        for kind in self.forbid:
            if kind not in KINDS:
                raise ValueError(f"Label.forbid: {kind!r} is not one of {', '.join(KINDS)}")
        both = {e.kind for e in self.expect} & set(self.forbid)
        if both:
            raise ValueError(f"Label: kinds both expected and forbidden: {sorted(both)}")

    @property
    def healthy(self) -> bool:
        return not self.expect and set(self.forbid) == set(KINDS)

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "expect": [e.to_dict() for e in self.expect], "forbid": list(self.forbid)}


HEALTHY = Label()


def broken(*expect: Expect, forbid: tuple[str, ...] = ()) -> Label:
    """A label for a broken run: these findings, and none of ``forbid``."""
    return Label(tuple(expect), tuple(forbid))


@dataclass
class Run:
    """What a scenario returns: the watch's history and diagnosis, the label, and the facts the label rests on
    (numbers measured by the zoo itself: losses, the injected step, the traced origin…)."""

    history: Any  # gradwatch History
    diagnosis: Any  # gradwatch Diagnosis
    label: Label
    facts: dict[str, Any] = field(default_factory=dict)

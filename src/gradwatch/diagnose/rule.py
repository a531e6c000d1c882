"""What one diagnosis rule declares (:class:`Rule`) and what it is given (:class:`Context`).

Every rule is a module of :mod:`gradwatch.diagnose.rules` with a module-level ``RULE``; the registry finds it
there, and the kinds, their order and the healthy sentence follow from the registered rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from gradwatch.config import StrictModel
from gradwatch.diagnose.facts import Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.signals import Signals
from gradwatch.diagnose.thresholds_shared import SharedThresholds
from gradwatch.probe.history import History

L = TypeVar("L", bound=StrictModel)


@dataclass(frozen=True)
class Context:
    """What a rule judges: the history, its derived signals, the thresholds, what the model and loop already have
    and the watch's silent-bug notes (None when it kept none: no optimizer, an older history).

    ``t`` is the full :class:`~gradwatch.diagnose.Thresholds`, typed as its shared base; a rule reads the fields it
    owns through :meth:`limits`, which keeps them type-checked (the full class is assembled from the registry)."""

    h: History
    s: Signals
    t: SharedThresholds
    facts: Facts
    notes: dict[str, Any] | None

    def limits(self, own: type[L]) -> L:
        """The thresholds as the rule's own ``Limits`` model: ``Thresholds`` derives from every rule's, so this is
        ``t`` itself, seen through the type that declares the rule's fields."""
        if not isinstance(self.t, own):
            raise TypeError(
                f"limits: {own.__module__}.{own.__qualname__} is not part of {type(self.t).__name__}; declare it "
                "with Rule(limits=...) so that gradwatch.diagnose.Thresholds includes its fields"
            )
        return self.t


@dataclass(frozen=True)
class Rule:
    """One kind of finding.

    ``rank`` orders the kinds in a diagnosis (lower first); ``healthy`` is what a healthy run has none of
    ("vanishing layers": the healthy sentence merges phrases that end in the same word; None for a silent-bug
    rule, which the sentence names together as "silent training bugs", so adding one leaves it unchanged);
    ``limits`` is the pydantic model of the thresholds the rule owns (its module's ``Limits``: name, default,
    constraints and a description with its source per field), which :class:`~gradwatch.diagnose.Thresholds`
    gathers from every rule; ``shared`` names the fields of
    :class:`~gradwatch.diagnose.thresholds_shared.SharedThresholds` it reads too;
    ``needs`` the statistics of which at least one must be recorded for the rule to run, with ``missing`` the
    "not checked" note otherwise;
    ``remedies(facts, **evidence)`` ranks the catalogue's remedies for this kind (None: the rule names its own).
    ``family``: "gradient" (the labelled zoo scores these) or "silent" (silent training bugs).
    """

    kind: str
    rank: int
    healthy: str | None
    find: Callable[[Context], Finding | None]
    family: Literal["gradient", "silent"] = "gradient"
    limits: type[StrictModel] | None = None
    shared: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    missing: str = ""
    remedies: Callable[..., list[Remedy]] | None = None

    @property
    def thresholds(self) -> tuple[str, ...]:
        """Every field of :class:`~gradwatch.diagnose.Thresholds` the rule reads: its own, then the shared ones."""
        return (*(self.limits.model_fields if self.limits is not None else ()), *self.shared)

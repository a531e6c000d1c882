"""What one diagnosis rule declares (:class:`Rule`) and what it is given (:class:`Context`).

Every rule is a module of :mod:`gradwatch.diagnose.rules` with a module-level ``RULE``; the registry finds it
there, and the kinds, their order and the healthy sentence follow from the registered rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from gradwatch.diagnose.facts import Facts
from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.signals import Signals
from gradwatch.diagnose.thresholds import Thresholds
from gradwatch.probe.history import History


@dataclass(frozen=True)
class Context:
    """What a rule judges: the history, its derived signals, the thresholds, what the model and loop already have
    and the watch's silent-bug notes (None when it kept none: no optimizer, an older history)."""

    h: History
    s: Signals
    t: Thresholds
    facts: Facts
    notes: dict[str, Any] | None


@dataclass(frozen=True)
class Rule:
    """One kind of finding.

    ``rank`` orders the kinds in a diagnosis (lower first); ``healthy`` is what a healthy run has none of
    ("vanishing layers": the healthy sentence merges phrases that end in the same word; None for a silent-bug
    rule, which the sentence names together as "silent training bugs", so adding one leaves it unchanged);
    ``thresholds`` names the fields of :class:`~gradwatch.diagnose.thresholds.Thresholds` the rule reads;
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
    thresholds: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    missing: str = ""
    remedies: Callable[..., list[Remedy]] | None = None

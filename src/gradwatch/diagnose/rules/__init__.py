"""The registry of diagnosis rules: every module of this package with a module-level ``RULE``
(:class:`~gradwatch.diagnose.rule.Rule`) is a rule. The kinds, their order, the kinds the labelled zoo scores and
the healthy sentence all follow from the registered rules, so adding a rule is adding a module here (with its test
and its docs section).
"""

from __future__ import annotations

import importlib
import pkgutil

from gradwatch.diagnose.rule import Rule


def _discover() -> tuple[Rule, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        rule = getattr(module, "RULE", None)
        if isinstance(rule, Rule):
            found.append(rule)
    kinds = [r.kind for r in found]
    dup = sorted({k for k in kinds if kinds.count(k) > 1})
    if dup:
        raise RuntimeError(f"diagnosis rules: kind(s) {', '.join(dup)} registered twice")
    return tuple(sorted(found, key=lambda r: (r.rank, r.kind)))


RULES: tuple[Rule, ...] = _discover()
BY_KIND: dict[str, Rule] = {r.kind: r for r in RULES}
KINDS: tuple[str, ...] = tuple(r.kind for r in RULES)
GRADIENT_KINDS: tuple[str, ...] = tuple(r.kind for r in RULES if r.family == "gradient")
SILENT_KINDS: tuple[str, ...] = tuple(r.kind for r in RULES if r.family == "silent")
SILENT_PHRASE = "silent training bugs"  # the healthy sentence's words for every rule without its own phrase


def healthy_sentence() -> str:
    """ "healthy: no …" naming what every registered rule looks for; phrases ending in the same word are merged
    ("vanishing layers", "dead layers" → "vanishing or dead layers"), the silent-bug rules named together."""
    groups: dict[str, list[str]] = {}
    for r in RULES:
        phrase = r.healthy if r.healthy is not None else SILENT_PHRASE
        head, _, noun = phrase.rpartition(" ")
        heads = groups.setdefault(noun, [])
        if head not in heads:
            heads.append(head)
    parts = [_either([h for h in heads if h]) + (" " if any(heads) else "") + noun for noun, heads in groups.items()]
    return f"healthy: no {_either(parts)} found"


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1] if items else ""


__all__ = ["BY_KIND", "GRADIENT_KINDS", "KINDS", "RULES", "SILENT_KINDS", "healthy_sentence"]

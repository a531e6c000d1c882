"""When a per-layer number becomes a finding: :class:`Thresholds`, every threshold a named field with its default,
its allowed range and its source.

The fields are declared where they are read: each rule's module declares the ones it owns (its ``Limits`` model,
passed as ``Rule(limits=...)``), and :class:`~gradwatch.diagnose.thresholds_shared.SharedThresholds` those that
several rules read. ``Thresholds`` derives from all of them, so it is one validated model (unknown keywords
rejected, every error naming the field and its allowed range) that grows with the registry, and a rule sees its
own fields through its own typed model (``ctx.limits(Limits)``).
"""

from __future__ import annotations

from gradwatch.config import StrictModel
from gradwatch.diagnose.rule import Rule
from gradwatch.diagnose.rules import RULES
from gradwatch.diagnose.thresholds_shared import SharedThresholds


def owners(rules: tuple[Rule, ...] = RULES) -> dict[str, str]:
    """Each threshold's declarer: a rule's kind, or "shared". A field declared twice is an error at import."""
    found = dict.fromkeys(SharedThresholds.model_fields, "shared")
    for rule in rules:
        for name in rule.limits.model_fields if rule.limits is not None else ():
            if name in found:
                raise RuntimeError(f"threshold {name!r} is declared by both {found[name]!r} and rule {rule.kind!r}")
            found[name] = rule.kind
    return found


def _rule_limits(rules: tuple[Rule, ...]) -> tuple[type[StrictModel], ...]:
    owners(rules)  # no field declared twice
    # reversed: pydantic lists the fields of the last base first, so they follow the rules' rank, shared ones last
    return tuple(reversed([r.limits for r in rules if r.limits is not None]))


class Thresholds(SharedThresholds, *_rule_limits(RULES)):  # type: ignore[misc]  # the bases come from the registry
    """Thresholds of :func:`gradwatch.diagnose.diagnose`, each a keyword of it. Defaults in brackets.

    Layers are compared through scale-free numbers, never raw per-element gradients across layers of different
    type and size: the *relative gradient* ‖g‖/‖θ‖ of a layer (its learning speed under SGD: the step is
    lr·‖g‖/‖θ‖ of the weights), the update ratio ‖Δθ‖/‖θ‖ (Karpathy's rule of thumb: about 1e-3 is healthy),
    and the backward gains along depth.

    Each field is declared by the rule that reads it (the ``Limits`` of its module in
    :mod:`gradwatch.diagnose.rules`) or, when several do, by
    :class:`~gradwatch.diagnose.thresholds_shared.SharedThresholds`; the thresholds table of the diagnosis docs
    lists them all.
    """

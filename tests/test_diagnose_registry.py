"""The registry of diagnosis rules: every module of ``gradwatch.diagnose.rules`` with a ``RULE`` is one rule, and the
kinds, the zoo's kinds, the "not checked" notes and the healthy sentence follow from the registered rules."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import gradwatch.diagnose.rules as rules_pkg
from gradwatch.config import StrictModel
from gradwatch.diagnose import (
    GRADIENT_KINDS,
    KINDS,
    RULES,
    SILENT_KINDS,
    Context,
    Rule,
    Thresholds,
    healthy_sentence,
    remedies_for,
)
from gradwatch.diagnose.facts import Facts
from gradwatch.diagnose.thresholds import owners
from gradwatch.diagnose.thresholds_shared import SharedThresholds
from gradwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_every_module_of_the_package_is_one_registered_rule_in_rank_order():
    modules = [m.name for m in pkgutil.iter_modules(rules_pkg.__path__)]
    declared = [importlib.import_module(f"gradwatch.diagnose.rules.{m}").RULE.kind for m in modules]
    assert sorted(declared) == sorted(KINDS) and len(set(KINDS)) == len(KINDS)
    assert [r.rank for r in RULES] == sorted(r.rank for r in RULES)
    assert set(GRADIENT_KINDS) | set(SILENT_KINDS) == set(KINDS) and not set(GRADIENT_KINDS) & set(SILENT_KINDS)


def test_every_threshold_is_declared_by_exactly_one_rule_or_the_shared_base():
    """Thresholds is assembled from the registry: adding a rule with a new threshold touches only its module."""
    fields = list(Thresholds.model_fields)
    declared = [*SharedThresholds.model_fields, *(f for r in RULES if r.limits for f in r.limits.model_fields)]
    assert sorted(declared) == sorted(fields) and len(set(declared)) == len(declared)
    for r in RULES:
        assert set(r.thresholds) <= set(fields), r.kind
        assert set(r.shared) <= set(SharedThresholds.model_fields), r.kind  # its own fields are in its Limits
        if r.limits is not None:
            assert issubclass(Thresholds, r.limits) and r.limits.__module__ == f"{rules_pkg.__name__}.{r.kind}"
    # every field is read: by the rules that list it, or (min_weight_rms) by the shared signals too
    assert set(fields) - {f for r in RULES for f in r.thresholds} <= {"min_weight_rms"}


def test_a_threshold_declared_twice_is_an_error():
    class Limits(StrictModel):
        persist_fraction: float = 0.5

    twice = Rule("twice", 999, None, lambda ctx: None, limits=Limits)
    with pytest.raises(RuntimeError, match="'persist_fraction' is declared by both 'shared' and rule 'twice'"):
        owners((*RULES, twice))


def test_a_rule_reads_its_own_thresholds_typed_and_only_declared_ones():
    from gradwatch.diagnose.rules.vanishing import Limits as VanishingLimits

    t = Thresholds(vanishing_ratio=1e-3)
    ctx = Context(None, None, t, None, None)  # type: ignore[arg-type]
    assert ctx.limits(VanishingLimits).vanishing_ratio == 1e-3

    class Undeclared(StrictModel):
        x: float = 1.0

    with pytest.raises(TypeError, match="Undeclared is not part of Thresholds"):
        ctx.limits(Undeclared)


def test_thresholds_validate_as_one_model():
    assert Thresholds(spike_window=5, min_episode=2).to_dict()["spike_window"] == 5
    with pytest.raises(ConfigError, match="spike_window=2 is not allowed: must be ≥ 3"):
        Thresholds(spike_window=2)
    with pytest.raises(ConfigError, match="unknown parameter; known ones are .*vanishing_ratio.*min_episode"):
        Thresholds(spike_windw=5)
    t = Thresholds(dead_fraction=0.25)
    assert pickle.loads(pickle.dumps(t)) == t  # diagnoses cross process boundaries (sweeps, the web app)


_SIGN = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


def test_the_docs_thresholds_table_lists_every_field_with_its_default_range_and_declarer():
    text = (REPO / "docs" / "diagnosis.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", text, re.M)
    table = {name: (float(default), allowed.strip(), who.strip()) for name, default, allowed, who in rows
             if name in Thresholds.model_fields}
    owner = owners()
    expected = {}
    for name, f in Thresholds.model_fields.items():
        allowed = ", ".join(f"{_SIGN[k]} {getattr(m, k):g}" for m in f.metadata for k in _SIGN if hasattr(m, k))
        who = "shared (`SharedThresholds`)" if owner[name] == "shared" else f"`{owner[name]}`"
        expected[name] = (float(f.default), allowed, who)
    assert table == expected


def test_the_healthy_sentence_names_every_gradient_rule_and_the_silent_bugs():
    sentence = healthy_sentence()
    for r in RULES:
        if r.healthy is not None:
            for word in r.healthy.split():
                assert word in sentence, (r.kind, word)
    assert sentence.startswith("healthy: no ") and "silent training bugs" in sentence


@pytest.mark.parametrize("kind", GRADIENT_KINDS)
def test_remedies_for_is_the_rules_own_ranking(kind):
    facts = Facts(normalised=False, residual=False, relu_family=False, saturating=True, gated=False,
                  recurrent=False, transformer=False, clips=False, adaptive=False)
    rule = next(r for r in RULES if r.kind == kind)
    assert rule.remedies is not None
    assert remedies_for(kind, facts) == rule.remedies(facts) and remedies_for(kind, facts)
    with pytest.raises(KeyError, match="kinds with them"):
        remedies_for("no_such_kind", facts)


def test_the_zoo_scores_the_registrys_gradient_kinds():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from zoo.label import KINDS as ZOO_KINDS
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert ZOO_KINDS == GRADIENT_KINDS

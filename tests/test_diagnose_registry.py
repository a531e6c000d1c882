"""The registry of diagnosis rules: every module of ``gradwatch.diagnose.rules`` with a ``RULE`` is one rule, and the
kinds, the zoo's kinds, the "not checked" notes and the healthy sentence follow from the registered rules."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

import gradwatch.diagnose.rules as rules_pkg
from gradwatch.diagnose import GRADIENT_KINDS, KINDS, RULES, SILENT_KINDS, Thresholds, healthy_sentence, remedies_for
from gradwatch.diagnose.facts import Facts

REPO = Path(__file__).resolve().parents[1]


def test_every_module_of_the_package_is_one_registered_rule_in_rank_order():
    modules = [m.name for m in pkgutil.iter_modules(rules_pkg.__path__)]
    declared = [importlib.import_module(f"gradwatch.diagnose.rules.{m}").RULE.kind for m in modules]
    assert sorted(declared) == sorted(KINDS) and len(set(KINDS)) == len(KINDS)
    assert [r.rank for r in RULES] == sorted(r.rank for r in RULES)
    assert set(GRADIENT_KINDS) | set(SILENT_KINDS) == set(KINDS) and not set(GRADIENT_KINDS) & set(SILENT_KINDS)


def test_each_threshold_a_rule_declares_is_a_field_of_thresholds():
    fields = set(Thresholds.model_fields)
    for r in RULES:
        assert set(r.thresholds) <= fields, r.kind
    # the fields no rule lists are read by the shared signals (which layers' ratios mean something)
    assert fields - {f for r in RULES for f in r.thresholds} <= {"min_weight_rms"}


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

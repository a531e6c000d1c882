"""Diagnosis: findings (vanishing, exploding, large updates, saturation, dead units, non-finite values, stalled
updates, silent training bugs) from a watch's history, with evidence and remedies that fit the model. Each kind is
one rule, a module of :mod:`gradwatch.diagnose.rules`."""

from gradwatch.diagnose.findings import Diagnosis, Finding
from gradwatch.diagnose.remedies import CATALOGUE, Remedy, remedies_for
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.rules import GRADIENT_KINDS, KINDS, RULES, SILENT_KINDS, healthy_sentence
from gradwatch.diagnose.run import diagnose
from gradwatch.diagnose.thresholds import Thresholds

__all__ = [
    "CATALOGUE",
    "GRADIENT_KINDS",
    "KINDS",
    "RULES",
    "SILENT_KINDS",
    "Context",
    "Diagnosis",
    "Finding",
    "Remedy",
    "Rule",
    "Thresholds",
    "diagnose",
    "healthy_sentence",
    "remedies_for",
]

"""Diagnosis: findings (vanishing, exploding, large updates, saturation, dead units, non-finite values, stalled
updates) from a watch's history, with evidence and remedies that fit the model."""

from gradwatch.diagnose.findings import KINDS, Diagnosis, Finding
from gradwatch.diagnose.remedies import CATALOGUE, Remedy, remedies_for
from gradwatch.diagnose.rules import diagnose
from gradwatch.diagnose.thresholds import Thresholds

__all__ = ["CATALOGUE", "KINDS", "Diagnosis", "Finding", "Remedy", "Thresholds", "diagnose", "remedies_for"]

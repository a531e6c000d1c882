"""Diagnosis: findings (vanishing, exploding, saturation, dead units, non-finite, stalled updates) with the
evidence and the seeds' remedies, from a watch's history."""

from gradwatch.diagnose.remedies import CATALOGUE, Remedy
from gradwatch.diagnose.rules import KINDS, Diagnosis, Finding, Thresholds, diagnose

__all__ = ["CATALOGUE", "KINDS", "Diagnosis", "Finding", "Remedy", "Thresholds", "diagnose"]

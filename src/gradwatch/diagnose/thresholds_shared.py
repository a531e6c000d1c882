"""The thresholds several rules read (and the shared signals): the base of :class:`~gradwatch.diagnose.Thresholds`.

A threshold read by one rule is declared in that rule's module (its ``Limits``), so adding a rule with a new
threshold touches no file but the rule's own; only a threshold that several rules read lives here.
"""

from __future__ import annotations

from pydantic import Field

from gradwatch.config import StrictModel


class SharedThresholds(StrictModel):
    """Thresholds that more than one rule reads, or the signals every rule is built on. Defaults in brackets."""

    min_weight_rms: float = Field(
        1e-6,
        gt=0,
        description="[1e-6] layers whose weights' RMS is below this (zero-initialised) have no meaningful relative "
        "gradient or update ratio and are left out of those comparisons",
    )
    persist_fraction: float = Field(0.5, gt=0, le=1, description="[0.5] share of measured steps a state must hold on")
    min_episode: int = Field(3, ge=1, description="[3] consecutive recorded steps a state must last to be an episode")

"""All the silent-bug rules, run by :func:`gradwatch.diagnose.diagnose`."""

from __future__ import annotations

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.silent import (
    amp_skipping,
    clip_ineffective,
    eval_mode,
    lr_collapse,
    missing_zero_grad,
    no_gradient,
    not_in_optimizer,
    replica_divergence,
)
from gradwatch.diagnose.silent.notes import notes, unowned_layers
from gradwatch.probe.history import History

RULES = (missing_zero_grad, clip_ineffective, replica_divergence, not_in_optimizer, no_gradient, eval_mode,
         lr_collapse)


def silent_findings(h: History) -> list[Finding]:
    """The silent-bug findings of ``h`` (none when the watch had no optimizer)."""
    out = [amp_skipping.find(h, {})]
    s = notes(h)
    if s is not None:
        out += [rule.find(h, s) for rule in RULES]
    return [f for f in out if f is not None]


__all__ = ["silent_findings", "unowned_layers"]

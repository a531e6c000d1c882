"""A sweep's results per configuration: mean ± spread over seeds of the final metrics and of the first-to-last
layer gradient ratio, and the best configuration. Reads stored runs (their config and summary), so a resumed
or re-opened sweep summarises the same way."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METRICS = ("test_accuracy", "test_loss", "accuracy", "loss", "grad_ratio")  # summarised, when present
LOG_METRICS = ("grad_ratio",)  # spread over orders of magnitude: averaged in log10 (geometric mean)


@dataclass
class Stat:
    """One metric over the seeds of one configuration. For log metrics ``mean`` is the geometric mean and
    ``spread`` the standard deviation of log10 (a factor of 10**spread); otherwise the sample standard
    deviation (0 with one seed)."""

    values: list[float]
    log: bool = False

    @property
    def finite(self) -> np.ndarray:
        v = np.array(self.values, dtype=float)
        v = v[np.isfinite(v)]
        return v[v > 0] if self.log else v

    @property
    def mean(self) -> float:
        v = self.finite
        if not len(v):
            return math.nan
        return float(10 ** np.mean(np.log10(v))) if self.log else float(np.mean(v))

    @property
    def spread(self) -> float:
        v = self.finite
        if len(v) < 2:
            return 0.0 if len(v) else math.nan
        return float(np.std(np.log10(v) if self.log else v, ddof=1))

    def text(self) -> str:
        if math.isnan(self.mean):
            return "—"
        if self.log:
            return f"{self.mean:.3g} ×/÷ {10**self.spread:.2g}"
        return f"{self.mean:.4g} ± {self.spread:.2g}"

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "spread": self.spread, "values": self.values, "log": self.log}


@dataclass
class ConfigSummary:
    combo: dict[str, Any]
    seeds: list[int]
    stats: dict[str, Stat] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.combo,
            "seeds": self.seeds,
            "run_ids": self.run_ids,
            **{k: s.to_dict() for k, s in self.stats.items()},
        }


def best_metric(rows: Sequence[ConfigSummary]) -> tuple[str, bool]:
    """(metric, higher is better) that ranks configurations: test accuracy when measured, else test loss."""
    if any("test_accuracy" in r.stats and not math.isnan(r.stats["test_accuracy"].mean) for r in rows):
        return "test_accuracy", True
    return "test_loss", False


def summarise(runs: Iterable[dict[str, Any]], names: Sequence[str]) -> list[ConfigSummary]:
    """Group stored runs by their values of the swept ``names`` (seeds pooled), in first-seen order."""
    groups: dict[tuple, ConfigSummary] = {}
    for run in runs:
        cfg, summ = run["config"], run["summary"]
        combo = {n: cfg.get(n) for n in names}
        key = tuple(str(combo[n]) for n in names)
        g = groups.setdefault(key, ConfigSummary(combo, []))
        g.seeds.append(cfg.get("seed"))
        g.run_ids.append(run["id"])
        for m in METRICS:
            if m in summ and summ[m] is not None:
                g.stats.setdefault(m, Stat([], log=m in LOG_METRICS)).values.append(float(summ[m]))
    return list(groups.values())


def best(rows: Sequence[ConfigSummary]) -> ConfigSummary | None:
    metric, higher = best_metric(rows)
    ranked = [r for r in rows if metric in r.stats and not math.isnan(r.stats[metric].mean)]
    if not ranked:
        return None
    return (max if higher else min)(ranked, key=lambda r: r.stats[metric].mean)

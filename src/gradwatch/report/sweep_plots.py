"""Plots of a sweep, read from stored runs (``RunStore.runs()`` / ``completed()`` dicts: config + summary):
a heatmap of a metric over two swept knobs, and lines over one knob with the seeds as a band.

A knob is a config field name, or ``(label, function of the config dict)`` for a derived quantity (e.g.
σ_w² = N·init_std²). Cells and points average over seeds and over any knob not on the axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwatch.report.plots import _Saveable, config_color, label_axes

Knob = str | tuple[str, Callable[[dict[str, Any]], Any]]
METRIC_LABELS = {
    "test_accuracy": "test accuracy",
    "test_loss": "test loss",
    "accuracy": "train accuracy",
    "loss": "training loss",
    "grad_ratio": "‖g first layer‖ / ‖g last layer‖",
}


def knob_label(knob: Knob) -> str:
    return knob if isinstance(knob, str) else knob[0]


def knob_value(knob: Knob, config: dict[str, Any]) -> Any:
    return config.get(knob) if isinstance(knob, str) else knob[1](config)


def _ratio_spaced(values: Sequence[float]) -> bool:
    """True when positive values are more evenly spaced in log than in linear scale (e.g. 1e-3, 1e-2, 1e-1)."""
    v = np.array(sorted(set(values)), dtype=float)
    if len(v) < 3 or v[0] <= 0:
        return False
    cv = lambda d: np.std(d) / np.mean(d)  # noqa: E731  relative unevenness of the steps
    return bool(cv(np.diff(np.log(v))) < cv(np.diff(v)))


def _edges(values: Sequence[float], log: bool) -> np.ndarray:
    """Cell edges half-way between sorted values (in log space when ``log``)."""
    v = np.log(values) if log else np.array(values, dtype=float)
    if len(v) == 1:
        e = np.array([v[0] - 0.5, v[0] + 0.5]) if not log else np.array([v[0] - 0.3, v[0] + 0.3])
    else:
        mid = (v[1:] + v[:-1]) / 2
        e = np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])
    return np.exp(e) if log else e


def _ordered(values) -> list:
    """Numbers sorted; anything else (activations, inits) in the order first seen, i.e. as swept."""
    values = list(dict.fromkeys(values))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return sorted(values) if numeric else values


def metric_grid(runs: Sequence[dict[str, Any]], x: Knob, y: Knob, metric: str):
    """(x values, y values, mean metric [len(y), len(x)] with NaN where no run) over stored runs."""
    cells: dict[tuple[Any, Any], list[float]] = {}
    for r in runs:
        v = r["summary"].get(metric)
        key = (knob_value(x, r["config"]), knob_value(y, r["config"]))
        cells.setdefault(key, []).append(math.nan if v is None else float(v))
    xs = _ordered(k[0] for k in cells)
    ys = _ordered(k[1] for k in cells)
    grid = np.full((len(ys), len(xs)), np.nan)
    for (a, b), vals in cells.items():
        finite = [v for v in vals if math.isfinite(v)]
        grid[ys.index(b), xs.index(a)] = np.mean(finite) if finite else np.nan
    return xs, ys, grid


class SweepHeatmap(_Saveable):
    """A metric over two knobs, one cell per pair of values (mean over seeds), value written in each cell.

    ``curves = {label: (x values, y values)}`` are drawn over the cells (e.g. 6 ξ_c over σ_w²). A numeric x
    axis that is log-spaced is drawn in log scale. Example::

        SweepHeatmap(store.runs(status="completed"), "init_std", "depth", "test_accuracy").save("heat.png")
    """

    def __init__(
        self,
        runs: Sequence[dict[str, Any]],
        x: Knob,
        y: Knob,
        metric: str,
        *,
        title: str | None = None,
        curves: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
        cmap: str = "viridis",
        vmin: float | None = None,
        vmax: float | None = None,
    ):
        self.xs, self.ys, self.grid = metric_grid(runs, x, y, metric)
        self.x, self.y, self.metric, self.curves, self.cmap = x, y, metric, curves or {}, cmap
        self.vmin, self.vmax = vmin, vmax
        self.title = title or f"{METRIC_LABELS.get(metric, metric)} over {knob_label(x)} × {knob_label(y)}"

    def plot(self, ax=None) -> SweepHeatmap:
        ax = self._axes(ax, size=(7.0, 4.8))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.xs + self.ys)
        if numeric:
            logx, logy = _ratio_spaced(self.xs), _ratio_spaced(self.ys)
            xe, ye = _edges(self.xs, logx), _edges(self.ys, logy)
            xc, yc = self.xs, self.ys
        else:
            logx = logy = False
            xe, ye = np.arange(len(self.xs) + 1) - 0.5, np.arange(len(self.ys) + 1) - 0.5
            xc, yc = list(range(len(self.xs))), list(range(len(self.ys)))
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(self.grid), cmap=self.cmap, vmin=self.vmin, vmax=self.vmax)
        ax.figure.colorbar(mesh, ax=ax, label=METRIC_LABELS.get(self.metric, self.metric))
        for i, yv in enumerate(yc):
            for j, xv in enumerate(xc):
                if math.isfinite(self.grid[i, j]):
                    ax.text(xv, yv, f"{self.grid[i, j]:.2g}", ha="center", va="center", fontsize=7, color="white")
        for k, (label, (cx, cy)) in enumerate(self.curves.items()):
            ax.plot(cx, cy, color="red" if k == 0 else config_color(k), lw=2, label=label)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if numeric:  # one tick per swept value, written as given
            ax.set_xlim(xe[0], xe[-1])
            ax.set_ylim(ye[0], ye[-1])
            ax.set_xticks(self.xs, [f"{v:g}" for v in self.xs])
            ax.set_yticks(self.ys, [f"{v:g}" for v in self.ys])
            ax.minorticks_off()
        else:
            ax.set_xticks(xc, [str(v) for v in self.xs])
            ax.set_yticks(yc, [str(v) for v in self.ys])
        label_axes(ax, xlabel=knob_label(self.x), ylabel=knob_label(self.y), title=self.title, legend=bool(self.curves))
        ax.grid(False)
        return self


class SweepLines(_Saveable):
    """A metric over one knob: the mean over seeds as a line and mean ± one standard deviation as a band, one
    line per value of ``hue`` (another knob) when given. With ``logy`` (the default for the gradient ratio) the
    mean is geometric and the band is ×/÷ the spread factor."""

    def __init__(
        self,
        runs: Sequence[dict[str, Any]],
        x: Knob,
        metric: str,
        *,
        hue: Knob | None = None,
        title: str | None = None,
        logy: bool | None = None,
    ):
        self.series: dict[str, dict[Any, list[float]]] = {}
        by_hue: dict[Any, dict[Any, list[float]]] = {}
        for r in runs:
            v = r["summary"].get(metric)
            by_hue.setdefault(None if hue is None else knob_value(hue, r["config"]), {}).setdefault(
                knob_value(x, r["config"]), []
            ).append(math.nan if v is None else float(v))
        for h in _ordered(by_hue):
            self.series["" if hue is None else f"{knob_label(hue)}={h}"] = by_hue[h]
        self.x, self.metric, self.hue = x, metric, hue
        self.logy = metric == "grad_ratio" if logy is None else logy
        self.title = title or f"{METRIC_LABELS.get(metric, metric)} over {knob_label(x)} (band: ±1 sd over seeds)"

    def plot(self, ax=None) -> SweepLines:
        ax = self._axes(ax)
        xs_all = _ordered(x for pts in self.series.values() for x in pts)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs_all)
        for i, (label, pts) in enumerate(self.series.items()):
            xs = [x for x in xs_all if x in pts]
            pos = xs if numeric else [xs_all.index(v) for v in xs]
            # on a log axis: geometric mean and a ×/÷ band (the mean and sd of log10), as the summary table does
            vals = [np.array([v for v in pts[x] if math.isfinite(v) and (v > 0 or not self.logy)]) for x in xs]
            vals = [np.log10(v) if self.logy else v for v in vals]
            mean = np.array([v.mean() if len(v) else np.nan for v in vals])
            sd = np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in vals])
            lo, mid, hi = mean - sd, mean, mean + sd
            if self.logy:
                lo, mid, hi = 10**lo, 10**mid, 10**hi
            c = config_color(i)
            ax.plot(pos, mid, marker="o", ms=3, color=c, label=label or METRIC_LABELS.get(self.metric, self.metric))
            ax.fill_between(pos, lo, hi, color=c, alpha=0.2, lw=0)
        if not numeric:
            ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
        label_axes(
            ax,
            xlabel=knob_label(self.x),
            ylabel=METRIC_LABELS.get(self.metric, self.metric),
            title=self.title,
            logy=self.logy,
            logx=numeric and _ratio_spaced(xs_all),
        )
        return self

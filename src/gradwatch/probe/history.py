"""The record a watch leaves: per-layer statistics at every recorded step, on the host, as NumPy arrays.

``History`` is plain data (no tensors, no model): diagnosis, reports and plots read it, and it can be saved as
JSON (:meth:`History.to_dict`) and read back (:meth:`History.from_dict`).

**Bounded by default.** A long run is kept in at most ``max_rows`` rows (10,000 by default):

* the first ``head_rows`` recorded steps exactly (the start of training is the reference many findings use),
* the last ``recent_rows`` recorded steps exactly,
* everything between as *windows* of consecutive recorded steps. Each window keeps, per statistic and layer,
  the minimum, the mean and the maximum of its steps (NaN ignored; NaN only when every step was NaN), so a
  one-step spike is never averaged away: it is the window's max. Windows all hold the same number of steps
  (the last one may hold fewer); when there are too many, neighbouring pairs merge and the window length
  doubles, so memory stays fixed however long the run.

A row of :meth:`History.stat` is one exact step or one window; a window's row is labelled with its *first* step
(:attr:`History.steps`) and :attr:`History.spans` gives the first and last step of every row. ``stat(name)``
returns the window mean (``reduce="min"`` / ``"max"`` / ``"sum"`` give the others), except for the non-finite
counts (:data:`MAX_REDUCED`), whose default is the max so that an event is never diluted. ``max_rows=None`` keeps
every step exactly (the memory then grows with the run: ≈ 4 bytes × statistics × layers per step).

Gradient histograms are bounded separately: at most ``max_histograms`` are kept; beyond that every other old one
is dropped (the first and the latest are always kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError, check_choice
from gradwatch.stat_names import ACT_NONFINITE, NONFINITE

MAX_REDUCED = (NONFINITE, ACT_NONFINITE)  # counts of events: a window's default value is its max
REDUCTIONS = ("mean", "min", "max", "sum")
HIST_SPECIAL = ("zero", "underflow", "overflow", "nan")  # per-layer counts outside the regular log10 bins


def _optional_positive(param: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(param, value, "expected a positive integer or None")
    return int(value)


class _Windows:
    """Down-sampled rows: per window its first/last step and number of steps, and per [stat, layer] the min, max
    and mean of the non-NaN values and how many there were (float32/int32: 16 bytes per window, stat and layer).
    All windows but the last hold exactly ``length`` steps."""

    def __init__(self, n_stats: int, n_layers: int):
        shape = (0, n_stats, n_layers)
        self.first = np.zeros(0, dtype=np.int64)
        self.last = np.zeros(0, dtype=np.int64)
        self.rows = np.zeros(0, dtype=np.int64)
        self.min = np.zeros(shape, dtype=np.float32)
        self.max = np.zeros(shape, dtype=np.float32)
        self.mean = np.zeros(shape, dtype=np.float32)
        self.n = np.zeros(shape, dtype=np.int32)
        self.length = 1

    def __len__(self) -> int:
        return len(self.first)

    def _sum(self) -> np.ndarray:  # Σ of the non-NaN values, float64 [windows, stats, layers]
        return np.where(self.n > 0, self.mean.astype(np.float64), 0.0) * self.n

    def _set(self, first, last, rows, lo, hi, total, n) -> None:
        self.first, self.last, self.rows = first, last, rows
        self.min, self.max, self.n = lo.astype(np.float32), hi.astype(np.float32), n.astype(np.int32)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean = np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)

    def add(self, steps: np.ndarray, values: np.ndarray, budget: int) -> None:
        """Append consecutive rows ``values[k, stats, layers]`` (after every row already held), then merge
        neighbouring pairs while there are more than ``budget`` windows."""
        k = 0
        if len(self) and self.rows[-1] < self.length:  # the last window is partial: it takes rows first
            k = min(int(self.length - self.rows[-1]), len(steps))
        # groups: the rows topping up the last window (if any), then windows of ``length`` rows
        starts = np.concatenate([[0] if k else [], np.arange(k, len(steps), self.length)]).astype(np.int64)
        ends = np.append(starts[1:], len(steps)) - 1
        valid = ~np.isnan(values)
        lo, hi = np.fmin.reduceat(values, starts, axis=0), np.fmax.reduceat(values, starts, axis=0)
        total = np.add.reduceat(np.where(valid, values, 0.0).astype(np.float64), starts, axis=0)
        n = np.add.reduceat(valid.astype(np.int64), starts, axis=0)
        first, last, rows = steps[starts], steps[ends], ends - starts + 1
        if k:  # fold the first group into the last window
            lo[0], hi[0] = np.fmin(self.min[-1], lo[0]), np.fmax(self.max[-1], hi[0])
            total[0] += self._sum()[-1]
            n[0] += self.n[-1]
            first[0], rows[0] = self.first[-1], rows[0] + self.rows[-1]
            keep = slice(0, len(self) - 1)
        else:
            keep = slice(0, len(self))
        self._set(
            np.concatenate([self.first[keep], first]),
            np.concatenate([self.last[keep], last]),
            np.concatenate([self.rows[keep], rows]),
            np.concatenate([self.min[keep], lo]),
            np.concatenate([self.max[keep], hi]),
            np.concatenate([self._sum()[keep], total]),
            np.concatenate([self.n[keep], n]),
        )
        while len(self) > budget:
            self._halve()

    def _halve(self) -> None:
        """Merge neighbouring pairs of windows; the window length doubles."""
        starts = np.arange(0, len(self), 2)
        ends = np.append(starts[1:], len(self)) - 1
        self._set(
            self.first[starts],
            self.last[ends],
            np.add.reduceat(self.rows, starts),
            np.fmin.reduceat(self.min, starts, axis=0),
            np.fmax.reduceat(self.max, starts, axis=0),
            np.add.reduceat(self._sum(), starts, axis=0),
            np.add.reduceat(self.n.astype(np.int64), starts, axis=0),
        )
        self.length *= 2

    def value(self, index: int, reduce: str) -> np.ndarray:  # [windows, layers] for stat ``index``
        if reduce == "min":
            return self.min[:, index].astype(np.float64)
        if reduce == "max":
            return self.max[:, index].astype(np.float64)
        mean = self.mean[:, index].astype(np.float64)
        return mean * self.n[:, index] if reduce == "sum" else mean


class History:
    """Per-layer statistics over the recorded steps (bounded; see the module documentation).

    ``layers`` are module paths, input side first. ``stat(name)`` is an array ``[rows, layers]`` (one row per
    exact step or down-sampled window); statistics sampled every k steps are NaN on the other steps
    (``stat(name, sampled_only=True)`` drops those rows). ``meta`` says how the numbers were taken (e.g.
    ``activation_scope``: ``"global"`` or ``"local rank r"`` under DDP).

    ``max_rows``: at most this many rows are held (None: every step, exactly). ``recent_rows`` (default
    ``max_rows // 5``) and ``head_rows`` (default ``max_rows // 100``, at least 1) are the last and first
    recorded steps kept exactly; the rest of the budget holds windows. ``max_histograms`` bounds the gradient
    histograms kept (None: all).
    """

    def __init__(
        self,
        layers: Sequence[str],
        stats: Sequence[str],
        *,
        kinds: Sequence[str] = (),
        numel: Sequence[int] = (),
        activations: Sequence[str | None] = (),
        hist_edges: Sequence[float] = (),
        meta: dict[str, Any] | None = None,
        max_rows: int | None = 10_000,
        recent_rows: int | None = None,
        head_rows: int | None = None,
        max_histograms: int | None = 1_000,
    ):
        self.layers = list(layers)
        self.stats = list(stats)
        self.kinds = list(kinds) or [""] * len(self.layers)
        self.numel = list(numel) or [0] * len(self.layers)
        self.activations = list(activations) or [None] * len(self.layers)
        self.hist_edges = np.asarray(hist_edges, dtype=float)
        self.meta = dict(meta or {})
        self.max_rows = _optional_positive("max_rows", max_rows)
        self.max_histograms = _optional_positive("max_histograms", max_histograms)
        if self.max_histograms is not None and self.max_histograms < 2:
            raise ConfigError("max_histograms", max_histograms, "expected at least 2 (the first and the latest)")
        if self.max_rows is None:
            self.recent_rows = self.head_rows = 0
        else:
            recent = _optional_positive("recent_rows", recent_rows)
            head = _optional_positive("head_rows", head_rows)
            self.recent_rows = recent if recent is not None else max(self.max_rows // 5, 1)
            self.head_rows = head if head is not None else max(self.max_rows // 100, 1)
            # exact rows may exceed recent_rows by this much before they are folded (folding is batched)
            self._slack = max(min(self.recent_rows // 4, (self.max_rows - self.recent_rows - self.head_rows) // 4), 0)
            least = self.recent_rows + self.head_rows + self._slack + 2
            if self.max_rows < least:
                raise ConfigError(
                    "max_rows",
                    max_rows,
                    f"expected at least {least}: recent_rows ({self.recent_rows}) "
                    f"+ head_rows ({self.head_rows}) + {self._slack} rows to batch the down-sampling "
                    "+ 2 windows",
                )
        shape = (0, len(self.stats), len(self.layers))
        self._head_steps, self._head = np.zeros(0, dtype=np.int64), np.zeros(shape, dtype=np.float32)
        self._windows = _Windows(len(self.stats), len(self.layers))
        self._steps: list[np.ndarray] = []  # exact rows after the head and the windows, in chunks
        self._values: list[np.ndarray] = []  # each [n, stats, layers]
        self._hist_steps: list[int] = []
        self._hists: list[np.ndarray] = []  # each [layers, bins + len(HIST_SPECIAL)] (or [layers, bins] if old)

    # ---- writing (the watcher) -------------------------------------------------------------------------------
    def append(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Add ``values[n, stats, layers]`` recorded at ``steps[n]`` (after every step already held)."""
        if not len(steps):
            return
        steps = np.asarray(steps, dtype=np.int64)
        values = np.array(values, dtype=np.float32)  # a copy: never a view of a torch tensor
        if self.max_rows is not None and len(self._head_steps) < self.head_rows:
            k = self.head_rows - len(self._head_steps)
            self._head_steps = np.concatenate([self._head_steps, steps[:k]])
            self._head = np.concatenate([self._head, values[:k]])
            steps, values = steps[k:], values[k:]
        if len(steps):
            self._steps.append(steps)
            self._values.append(values)
        if self.max_rows is not None and self._n_exact() > self.recent_rows + self._slack:
            self._fold(self.max_rows)  # with some slack, so that a flush of a few rows does not fold every time

    def append_histogram(self, step: int, counts: np.ndarray) -> None:
        """Add the counts ``[layers, bins + 4]`` (regular bins, then :data:`HIST_SPECIAL`) or ``[layers, bins]``."""
        self._hist_steps.append(int(step))
        self._hists.append(np.array(counts, dtype=np.float32))
        if self.max_histograms is not None and len(self._hists) > self.max_histograms:
            keep = list(range(0, len(self._hists) - 1, 2)) + [len(self._hists) - 1]  # first and latest stay
            self._hist_steps = [self._hist_steps[i] for i in keep]
            self._hists = [self._hists[i] for i in keep]

    def _n_exact(self) -> int:
        return sum(len(s) for s in self._steps)

    def _consolidate(self) -> None:
        if len(self._steps) > 1:
            self._steps = [np.concatenate(self._steps)]
            self._values = [np.concatenate(self._values)]

    def _fold(self, max_rows: int) -> None:
        """Move the exact rows older than the last ``recent_rows`` into windows."""
        self._consolidate()
        extra = self._n_exact() - self.recent_rows
        if extra <= 0:
            return
        steps, values = self._steps[0], self._values[0]
        budget = max_rows - self.head_rows - self.recent_rows - self._slack
        self._windows.add(steps[:extra], values[:extra], budget)
        self._steps, self._values = [steps[extra:]], [values[extra:]]

    # ---- reading ---------------------------------------------------------------------------------------------
    @property
    def steps(self) -> np.ndarray:
        """The step of every row (0 = the first optimizer step / ``w.step()`` call); a window's first step."""
        return self.spans[:, 0].copy()

    @property
    def spans(self) -> np.ndarray:
        """``[rows, 2]``: the first and last step each row covers (equal for an exact step)."""
        self._consolidate()
        exact = self._steps[0] if self._steps else np.zeros(0, dtype=np.int64)
        w = self._windows
        first = np.concatenate([self._head_steps, w.first, exact])
        last = np.concatenate([self._head_steps, w.last, exact])
        return np.stack([first, last], axis=1)

    @property
    def downsampled(self) -> bool:
        """Whether some rows are windows of several steps."""
        return len(self._windows) > 0

    @property
    def n_recorded(self) -> int:
        """How many steps were recorded (rows of exact steps plus the steps inside windows)."""
        return len(self._head_steps) + int(self._windows.rows.sum()) + self._n_exact()

    def __len__(self) -> int:
        """The number of rows (exact steps and windows)."""
        return len(self._head_steps) + len(self._windows) + self._n_exact()

    def stat(self, name: str, *, sampled_only: bool = False, reduce: str | None = None) -> np.ndarray:
        """Values of statistic ``name``: float64 array ``[rows, layers]``.

        ``reduce`` says what a down-sampled window gives: ``"mean"`` (default), ``"min"``, ``"max"`` or ``"sum"``
        over its steps; the non-finite counts (:data:`MAX_REDUCED`) default to ``"max"``. Exact rows are the
        same under every ``reduce``."""
        if name not in self.stats:
            raise ConfigError("stat", name, "not recorded by this watch; recorded: " + ", ".join(self.stats))
        if reduce is None:
            reduce = "max" if name in MAX_REDUCED else "mean"
        check_choice("reduce", reduce, REDUCTIONS)
        self._consolidate()
        i = self.stats.index(name)
        parts = [self._head[:, i, :].astype(np.float64), self._windows.value(i, reduce)]
        if self._values:
            parts.append(self._values[0][:, i, :].astype(np.float64))
        values = np.concatenate(parts)
        if sampled_only:
            values = values[~np.isnan(values).all(axis=1)]
        return values

    def sampled_steps(self, name: str) -> np.ndarray:
        """The steps (rows) at which ``name`` has a value (all rows for the default statistics)."""
        values = self.stat(name)
        return self.steps[~np.isnan(values).all(axis=1)] if len(values) else self.steps

    def has(self, name: str) -> bool:
        """Whether ``name`` was recorded and has at least one value."""
        return name in self.stats and len(self) > 0 and not np.isnan(self.stat(name)).all()

    def last(self, name: str) -> np.ndarray:
        """The last recorded value of ``name`` per layer (``[layers]``; NaN where never recorded)."""
        values = self.stat(name, sampled_only=True)
        return values[-1] if len(values) else np.full(len(self.layers), np.nan)

    @property
    def hist_steps(self) -> np.ndarray:
        return np.asarray(self._hist_steps, dtype=np.int64)

    def _hist_rows(self) -> np.ndarray:  # [histogram steps, layers, bins + len(HIST_SPECIAL)]
        bins = max(len(self.hist_edges) - 1, 0)
        width = bins + len(HIST_SPECIAL)
        if not self._hists:
            return np.zeros((0, len(self.layers), width))
        rows = [
            h if h.shape[-1] == width else np.concatenate([h, np.zeros((*h.shape[:-1], len(HIST_SPECIAL)))], axis=-1)
            for h in self._hists
        ]
        return np.stack(rows).astype(np.float64)

    def histograms(self) -> np.ndarray:
        """Counts of log10|∂L/∂θ| per regular bin: ``[histogram steps, layers, bins]`` (bin edges: ``hist_edges``;
        the elements outside them are counted by :meth:`hist_outside`)."""
        return self._hist_rows()[..., : max(len(self.hist_edges) - 1, 0)]

    def hist_outside(self) -> np.ndarray:
        """Counts of the elements outside the regular bins: ``[histogram steps, layers, 4]``, the columns in the
        order of :data:`HIST_SPECIAL`: exact zeros, underflow (0 < |g| below the first edge), overflow (|g|
        above the last edge, ±inf included) and NaN."""
        return self._hist_rows()[..., max(len(self.hist_edges) - 1, 0) :]

    def to_pandas(self):
        """Long format: one row per (row, layer, stat) with its value (NaN rows dropped). When the history holds
        down-sampled windows, the columns ``last_step``, ``min`` and ``max`` say what each row covers. pandas is
        imported here, lazily."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("History.to_pandas() needs pandas: pip install pandas") from exc
        spans = self.spans
        n = len(self.layers)
        frames = []
        for name in self.stats:
            frame = {
                "step": np.repeat(spans[:, 0], n),
                "layer": np.tile(self.layers, len(spans)),
                "stat": name,
                "value": self.stat(name).reshape(-1),
            }
            if self.downsampled:
                frame.update(
                    {
                        "last_step": np.repeat(spans[:, 1], n),
                        "min": self.stat(name, reduce="min").reshape(-1),
                        "max": self.stat(name, reduce="max").reshape(-1),
                    }
                )
            frames.append(pd.DataFrame(frame))
        columns = ["step", "layer", "stat", "value"] + (["last_step", "min", "max"] if self.downsampled else [])
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        return df.dropna(subset=["value"]).reset_index(drop=True)

    # ---- saving ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN → None). ``steps`` and ``stats`` hold every row (windows as their default reduction);
        ``windows`` holds what is needed to read the windows back exactly."""

        def clean(a: np.ndarray) -> list:
            return np.where(np.isnan(a), np.array(None, dtype=object), a).tolist()

        self._consolidate()
        w = self._windows
        d = {
            "layers": self.layers,
            "kinds": self.kinds,
            "numel": self.numel,
            "activations": self.activations,
            "meta": self.meta,
            "steps": self.steps.tolist(),
            "stats": {name: clean(self.stat(name)) for name in self.stats},
            "bounds": {
                "max_rows": self.max_rows,
                "recent_rows": self.recent_rows or None,
                "head_rows": self.head_rows or None,
                "max_histograms": self.max_histograms,
            },
            "hist_edges": self.hist_edges.tolist(),
            "hist_steps": self.hist_steps.tolist(),
            "histograms": self.histograms().tolist(),
            "hist_outside": self.hist_outside().tolist(),
        }
        if len(w):
            d["windows"] = {
                "head": len(self._head_steps),
                "length": w.length,
                "first": w.first.tolist(),
                "last": w.last.tolist(),
                "rows": w.rows.tolist(),
                "min": clean(w.min),
                "max": clean(w.max),
                "mean": clean(w.mean),
                "n": w.n.tolist(),
            }
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        bounds = d.get("bounds") or {"max_rows": None}  # a history saved before bounds existed: keep every row
        h = cls(
            d["layers"],
            list(d["stats"]),
            kinds=d.get("kinds", ()),
            numel=d.get("numel", ()),
            activations=d.get("activations", ()),
            hist_edges=d.get("hist_edges", ()),
            meta=d.get("meta"),
            **bounds,
        )
        if d["steps"]:
            steps = np.asarray(d["steps"], dtype=np.int64)
            values = np.stack([np.asarray(d["stats"][n], dtype=float) for n in h.stats], axis=1)
            win = d.get("windows")
            if win is None:
                h.append(steps, values)
            else:
                head, k = win["head"], len(win["first"])
                h._head_steps, h._head = steps[:head], values[:head].astype(np.float32)
                w = h._windows
                w.first, w.last = np.asarray(win["first"], dtype=np.int64), np.asarray(win["last"], dtype=np.int64)
                w.rows, w.length = np.asarray(win["rows"], dtype=np.int64), int(win["length"])
                w.min = np.asarray(win["min"], dtype=float).astype(np.float32)
                w.max = np.asarray(win["max"], dtype=float).astype(np.float32)
                w.mean = np.asarray(win["mean"], dtype=float).astype(np.float32)
                w.n = np.asarray(win["n"], dtype=np.int32)
                h._steps, h._values = [steps[head + k :]], [values[head + k :].astype(np.float32)]
        outside = d.get("hist_outside") or [None] * len(d.get("hist_steps", []))
        for step, counts, extra in zip(d.get("hist_steps", []), d.get("histograms", []), outside):
            counts = np.asarray(counts, dtype=float)
            h.append_histogram(step, counts if extra is None else np.concatenate([counts, np.asarray(extra)], -1))
        return h

    def __repr__(self) -> str:
        return f"History({len(self.layers)} layers, {self.n_recorded} steps in {len(self)} rows, stats={self.stats})"

"""Scale-free numbers derived from a history, shared by the rules.

* ``grad``: each layer's gradient norm as the model produced it (before clipping when the loop clips),
  ``[steps, layers]``; NaN where the layer had no gradient.
* ``weight``: each layer's weight norm, carried forward between the sampled steps it is measured on.
* ``rel``: the relative gradient ‖g‖/‖θ‖, NaN for zero-initialised weights (no meaningful ratio).
* ``depth``: the distance of each layer from the loss (larger: nearer the input) from the autograd graph the
  watch read, registration order where the graph is unknown.
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np

from gradwatch.diagnose.thresholds_shared import SharedThresholds
from gradwatch.probe.history import History
from gradwatch.stat_names import GRAD_NORM, GRAD_NORM_PRECLIP, UPDATE_RATIO, WEIGHT_NORM


def nanmedian(a: np.ndarray, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis)


def nanmax(a: np.ndarray, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(a, axis=axis)


def fmt(v: float) -> str:
    if not np.isfinite(v):
        return str(v)
    return f"{v:.2g}" if 1e-2 <= abs(v) < 1e3 else f"{v:.1e}"


def forward_fill(a: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last non-NaN value above it in its column (rows: steps)."""
    out = a.copy()
    for t in range(1, len(out)):
        gap = np.isnan(out[t])
        out[t, gap] = out[t - 1, gap]
    return out


def episodes(cond: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a 1-d boolean array as (first index, last index)."""
    runs, start = [], None
    for i, c in enumerate(cond):
        if c and start is None:
            start = i
        elif not c and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(cond) - 1))
    return runs


class Signals:
    def __init__(self, h: History, t: SharedThresholds):
        self.h, self.t = h, t
        self.steps = h.steps
        self.n_layers = len(h.layers)

    def stat(self, name: str) -> np.ndarray | None:
        return self.h.stat(name) if name in self.h.stats else None

    @cached_property
    def grad(self) -> np.ndarray:
        g = self.h.stat(GRAD_NORM)
        pre = self.stat(GRAD_NORM_PRECLIP)
        return np.where(np.isfinite(pre), pre, g) if pre is not None else g

    @cached_property
    def weight(self) -> np.ndarray | None:
        w = self.stat(WEIGHT_NORM)
        return None if w is None else forward_fill(w)

    @cached_property
    def weight_ok(self) -> np.ndarray | None:
        """Layers whose weights are large enough for ratios to mean something: ``[steps, layers]``."""
        if self.weight is None:
            return None
        numel = np.maximum(np.asarray(self.h.numel, dtype=float), 1.0)
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.weight) & (self.weight / np.sqrt(numel) > self.t.min_weight_rms)

    @cached_property
    def rel(self) -> np.ndarray | None:
        if self.weight is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.grad / self.weight
        return np.where(self.weight_ok & np.isfinite(r), r, np.nan)

    @cached_property
    def depth(self) -> np.ndarray:
        n = self.n_layers
        depth = self.h.meta.get("depth")
        if not depth or all(d is None for d in depth):
            return np.arange(n, 0, -1, dtype=float)  # registration order: the first layer is the deepest
        out = np.full(n, np.nan)
        known = [(i, d) for i, d in enumerate(depth) if d is not None]
        for i, d in known:
            out[i] = d
        for i in range(n):  # unused at the first forward pass: beside its registration neighbour
            if np.isnan(out[i]):
                prev = [d for j, d in known if j < i]
                out[i] = prev[-1] if prev else max(d for _, d in known) + 1
        return out

    @cached_property
    def total_grad(self) -> np.ndarray:  # [steps]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            g = np.where(np.isnan(self.grad), 0.0, self.grad)
            return np.sqrt(np.sum(g**2, axis=1))

    @cached_property
    def vector(self) -> np.ndarray:
        """Layers whose parameters are all vectors (biases, gains, LayerScale, norm scales): judged on their own."""
        v = self.h.meta.get("vectors")
        return np.asarray(v, dtype=bool) if v and len(v) == self.n_layers else np.zeros(self.n_layers, dtype=bool)

    @cached_property
    def group(self) -> list[tuple | None]:
        """Per layer, what it shares with the layers it may be compared with: the watched optimizer that steps it and
        the loss whose graph reached it first. None for a layer no watched optimizer steps: it is compared with
        none."""
        meta = self.h.meta
        opt = meta.get("optimizer_of") or [0] * self.n_layers
        loss = meta.get("loss_of") or [0] * self.n_layers
        return [(o, l if l is not None else 0) if o is not None else None for o, l in zip(opt, loss)]

    @cached_property
    def scale_bound(self) -> np.ndarray:
        """Layers whose step grows with their gradient: stepped by a non-adaptive optimizer (SGD…), or by an
        unknown one (no optimizer watched). Adam-like optimizers divide the gradient's scale out; layers no watched
        optimizer steps take no step from it."""
        from gradwatch.diagnose.facts import ADAPTIVE

        names = self.h.meta.get("optimizers") or []
        if not names:
            return np.ones(self.n_layers, dtype=bool)
        opt = self.h.meta.get("optimizer_of") or [0] * self.n_layers
        return np.array([o is not None and o < len(names) and not ADAPTIVE.search(names[o]) for o in opt], dtype=bool)

    @cached_property
    def static(self) -> np.ndarray:
        """Layers whose weights never changed on a measured step while they had a gradient: never a reference."""
        u = self.stat(UPDATE_RATIO)
        if u is None:
            return np.zeros(self.n_layers, dtype=bool)
        with np.errstate(invalid="ignore"):
            frozen = (np.isfinite(u) & (u == 0) & np.isfinite(self.grad) & (self.grad > 0)).sum(axis=0)
            moved = (np.isfinite(u) & (u > 0)).sum(axis=0)
        return (frozen > 0) & (moved == 0)

    def input_side_first(self, cols) -> list[int]:
        """Layer indices ordered from the input side (farthest from the loss) to the output side."""
        return sorted(cols, key=lambda c: (-self.depth[c], c))


def persistent(cond: np.ndarray, measured: np.ndarray, fraction: float) -> np.ndarray:
    """Per layer: the condition holds on ≥ ``fraction`` of the steps where the value was measured."""
    n = measured.sum(axis=0)
    return (n > 0) & (cond.sum(axis=0) >= fraction * np.maximum(n, 1))


def first_step(s: Signals, cond: np.ndarray, cols) -> int:
    """The first step on which ``cond`` holds for one of the layers ``cols`` (the first step when none)."""
    rows = np.flatnonzero(cond[:, list(cols)].any(axis=1))
    return int(s.steps[rows[0]]) if len(rows) else int(s.steps[0])

"""The record a watch leaves: per-layer statistics at every recorded step, on the host, as NumPy arrays.

``History`` is plain data (no tensors, no model): diagnosis, reports and plots read it, and it can be saved as
JSON (:meth:`History.to_dict`) and read back (:meth:`History.from_dict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError


class History:
    """Per-layer statistics over the recorded steps.

    ``layers`` are module paths, input side first. ``stat(name)`` is an array ``[recorded steps, layers]``;
    statistics sampled every k steps are NaN on the other steps (``stat(name, sampled_only=True)`` drops those
    rows). ``meta`` says how the numbers were taken (e.g. ``activation_scope``: ``"global"`` or ``"local rank r"``
    under DDP).
    """

    def __init__(self, layers: Sequence[str], stats: Sequence[str], *, kinds: Sequence[str] = (),
                 numel: Sequence[int] = (), activations: Sequence[str | None] = (),
                 hist_edges: Sequence[float] = (), meta: dict[str, Any] | None = None):
        self.layers = list(layers)
        self.stats = list(stats)
        self.kinds = list(kinds) or [""] * len(self.layers)
        self.numel = list(numel) or [0] * len(self.layers)
        self.activations = list(activations) or [None] * len(self.layers)
        self.hist_edges = np.asarray(hist_edges, dtype=float)
        self.meta = dict(meta or {})
        self._steps: list[np.ndarray] = []
        self._values: list[np.ndarray] = []  # each [n, stats, layers]
        self._hist_steps: list[int] = []
        self._hists: list[np.ndarray] = []  # each [layers, bins]

    # ---- writing (the watcher) -------------------------------------------------------------------------------
    def append(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Add ``values[n, stats, layers]`` recorded at ``steps[n]``."""
        if len(steps):
            self._steps.append(np.asarray(steps, dtype=np.int64))
            self._values.append(np.array(values, dtype=np.float32))  # a copy: never a view of a torch tensor

    def append_histogram(self, step: int, counts: np.ndarray) -> None:
        self._hist_steps.append(int(step))
        self._hists.append(np.array(counts, dtype=np.float32))

    def _consolidate(self) -> None:
        if len(self._steps) > 1:
            self._steps = [np.concatenate(self._steps)]
            self._values = [np.concatenate(self._values)]

    # ---- reading ---------------------------------------------------------------------------------------------
    @property
    def steps(self) -> np.ndarray:
        """The step numbers recorded (0 = the first optimizer step / ``w.step()`` call)."""
        self._consolidate()
        return self._steps[0].copy() if self._steps else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return sum(len(s) for s in self._steps)

    def stat(self, name: str, *, sampled_only: bool = False) -> np.ndarray:
        """Values of statistic ``name``: float64 array ``[recorded steps, layers]``."""
        if name not in self.stats:
            raise ConfigError("stat", name, "not recorded by this watch; recorded: " + ", ".join(self.stats))
        self._consolidate()
        if not self._values:
            return np.zeros((0, len(self.layers)))
        values = self._values[0][:, self.stats.index(name), :].astype(np.float64)
        if sampled_only:
            values = values[~np.isnan(values).all(axis=1)]
        return values

    def sampled_steps(self, name: str) -> np.ndarray:
        """The steps at which ``name`` has a value (all recorded steps for the default statistics)."""
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

    def histograms(self) -> np.ndarray:
        """Counts of log10|∂L/∂θ| per bin: ``[histogram steps, layers, bins]`` (bin edges: ``hist_edges``)."""
        if not self._hists:
            return np.zeros((0, len(self.layers), max(len(self.hist_edges) - 1, 0)))
        return np.stack(self._hists)

    def to_pandas(self):
        """Long format: one row per (step, layer, stat) with its value. pandas is imported here, lazily."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("History.to_pandas() needs pandas: pip install pandas") from exc
        steps = self.steps
        frames = []
        for name in self.stats:
            v = self.stat(name)  # [steps, layers]
            frames.append(pd.DataFrame({"step": np.repeat(steps, len(self.layers)),
                                        "layer": np.tile(self.layers, len(steps)),
                                        "stat": name, "value": v.reshape(-1)}))
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["step", "layer", "stat",
                                                                                       "value"])
        return df.dropna(subset=["value"]).reset_index(drop=True)

    # ---- saving ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN → None)."""
        def clean(a: np.ndarray) -> list:
            return np.where(np.isnan(a), None, a).tolist()

        return {"layers": self.layers, "kinds": self.kinds, "numel": self.numel, "activations": self.activations,
                "meta": self.meta, "steps": self.steps.tolist(),
                "stats": {name: clean(self.stat(name)) for name in self.stats},
                "hist_edges": self.hist_edges.tolist(), "hist_steps": self.hist_steps.tolist(),
                "histograms": self.histograms().tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        h = cls(d["layers"], list(d["stats"]), kinds=d.get("kinds", ()), numel=d.get("numel", ()),
                activations=d.get("activations", ()), hist_edges=d.get("hist_edges", ()), meta=d.get("meta"))
        if d["steps"]:
            values = np.stack([np.asarray(d["stats"][n], dtype=float) for n in h.stats], axis=1)
            h.append(np.asarray(d["steps"]), values)
        for step, counts in zip(d.get("hist_steps", []), d.get("histograms", [])):
            h.append_histogram(step, np.asarray(counts))
        return h

    def __repr__(self) -> str:
        return f"History({len(self.layers)} layers, {len(self)} steps, stats={self.stats})"

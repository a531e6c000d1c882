"""Reading what the watch noted (``history.meta["silent"]``) for the silent-bug rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwatch.probe.history import History
from gradwatch.stat_names import GRAD_NORM


def notes(h: History) -> dict[str, Any] | None:
    """The watch's notes on silent bugs, or None when it recorded none (no optimizer, an older history)."""
    s = h.meta.get("silent")
    return s if isinstance(s, dict) and s.get("params") is not None else None


def layers_of(h: History, s: dict[str, Any], params) -> list[str]:
    """The layers (input side first, each once) of the parameter indices ``params``."""
    owner = s["param_layer"]
    return [h.layers[c] for c in sorted({owner[int(i)] for i in params})]


def first_measured(h: History, layers: list[str]) -> int | None:
    """The first recorded step on which one of ``layers`` had a gradient (a finite grad_norm)."""
    if GRAD_NORM not in h.stats or not len(h):
        return None
    g = h.stat(GRAD_NORM)[:, [h.layers.index(n) for n in layers]]
    rows = np.flatnonzero(np.isfinite(g).any(axis=1))
    return int(h.steps[rows[0]]) if len(rows) else None


def unowned_layers(h: History) -> np.ndarray:
    """Per layer: every parameter of it got a gradient and no optimizer owns it (never a reference for the
    comparisons of the other rules: nothing steps it)."""
    out = np.zeros(len(h.layers), dtype=bool)
    s = notes(h)
    if s is None or not h.meta.get("optimizers"):
        return out
    free = ~(np.asarray(s["owned"], bool) | np.asarray(s["owned_elsewhere"], bool))
    for c in range(len(h.layers)):
        mine = [i for i, o in enumerate(s["param_layer"]) if o == c]
        out[c] = bool(mine) and bool(free[mine].all())
    return out

"""Which parameters get a gradient at the optimizer steps, and which optimizers own them.

Per optimizer step the watch already knows which of the parameters it measures have a ``.grad``; this counts each
such pattern (one dict increment per step) and folds the counts into per-parameter totals at the flush. Optimizers
that the watch was not given are seen through PyTorch's global step hook, so a parameter stepped by one of them is
owned, not "in no optimizer".
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

MAX_PATTERNS = 256  # distinct patterns of present gradients held before they are folded into the totals


class Presence:
    """Counts, per parameter, the steps on which its optimizer's parameters got a gradient and it did."""

    def __init__(self, n_params: int, watched: list[torch.optim.Optimizer]):
        self.n = n_params
        self.with_grad = np.zeros(n_params, dtype=np.int64)  # steps on which the parameter had a gradient
        self.observed = np.zeros(n_params, dtype=np.int64)  # steps on which some parameter measured with it had one
        self.first_step: dict[int, int] = {}  # optimizer -> first step it was seen
        self._patterns: dict[tuple[int, tuple[int, ...]], int] = {}
        self.indices: dict[int, tuple[int, ...]] = {}
        self._watched = {id(o) for o in watched}
        self._others: dict[int, weakref.ref] = {}  # id -> the other optimizers that stepped (weakly)
        self._last: tuple[int, list[int], tuple] | None = None  # (k, present, key) of the last step: reused
        self._handle = None
        try:
            from torch.optim.optimizer import register_optimizer_step_post_hook

            self._handle = register_optimizer_step_post_hook(self._any_step)
        except ImportError:  # pragma: no cover - torch < 2.0
            pass

    def _any_step(self, optimizer: Any, *_: Any) -> None:
        """Every optimizer step in the process (a global hook): cheap for the watched ones and those seen."""
        oid = id(optimizer)
        if oid in self._watched:
            return
        known = self._others.get(oid)
        if known is None or known() is not optimizer:
            self._others[oid] = weakref.ref(optimizer)

    def saw(self, k: int, indices, present: list[int], step: int) -> None:
        """Optimizer ``k`` (measuring ``indices``) is about to step with gradients on ``present``."""
        if not present:
            return
        last = self._last
        if last is not None and last[0] == k and last[1] is present:  # the same list as last step: the same key
            key = last[2]
        else:
            key = (k, tuple(present))
            self._last = (k, present, key)
        self._patterns[key] = self._patterns.get(key, 0) + 1
        if k not in self.indices:
            self.indices[k] = tuple(indices)
            self.first_step[k] = step
        if len(self._patterns) > MAX_PATTERNS:
            self.fold()

    def fold(self) -> None:
        for (k, present), count in self._patterns.items():
            self.with_grad[list(present)] += count
            self.observed[list(self.indices[k])] += count
        self._patterns.clear()

    def owned_elsewhere(self, params: list[torch.Tensor]) -> np.ndarray:
        """Per parameter: whether an optimizer the watch was not given, and that stepped, owns it."""
        others = [o for o in (r() for r in self._others.values()) if o is not None]
        ids = {id(p) for o in others for g in o.param_groups for p in g["params"]}
        return np.array([id(p) in ids for p in params], dtype=bool)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

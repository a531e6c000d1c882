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
        self._others: weakref.WeakSet = weakref.WeakSet()
        self._handle = None
        try:
            from torch.optim.optimizer import register_optimizer_step_post_hook

            self._handle = register_optimizer_step_post_hook(self._any_step)
        except ImportError:  # pragma: no cover - torch < 2.0
            pass

    def _any_step(self, optimizer: Any, *_: Any) -> None:
        if id(optimizer) not in self._watched and optimizer not in self._others:
            self._others.add(optimizer)

    def saw(self, k: int, indices, present: list[int], step: int) -> None:
        """Optimizer ``k`` (measuring ``indices``) is about to step with gradients on ``present``."""
        if not present:
            return
        key = (k, tuple(present))
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
        ids = {id(p) for o in list(self._others) for g in o.param_groups for p in g["params"]}
        return np.array([id(p) in ids for p in params], dtype=bool)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

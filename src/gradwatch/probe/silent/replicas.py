"""Whether the replicas of a DistributedDataParallel model still hold the same weights.

On check steps, before the optimizer steps, each rank takes one checksum per layer (the L2 norm of its weights,
fused) and one all-reduce of ``[checksum, -checksum]`` with MAX gives every rank the largest and the smallest
value across the replicas. The result stays on the device until the watch's flush reads it. Replicas that start
equal and apply the same all-reduced gradient stay bitwise equal; any spread means they diverged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

MAX_CHECKS = 64  # checks whose spread is kept (the first ones after a divergence, and the latest)


def replicated_group(model: nn.Module) -> Any | None:
    """The process group of a DDP model with more than one replica, else None."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return None
    if not isinstance(model, nn.parallel.DistributedDataParallel):
        return None
    group = getattr(model, "process_group", None)
    return group if dist.get_world_size(group) > 1 else None


class Replicas:
    def __init__(self, params: list[torch.Tensor], owner: list[int], n_layers: int, group: Any):
        self.params, self.group, self.n_layers = params, group, n_layers
        self.owner = torch.tensor(owner, dtype=torch.long, device=params[0].device)
        self._pending: list[tuple[int, torch.Tensor]] = []
        self.first: dict[int, tuple[int, float]] = {}  # layer -> (first step diverged, relative spread)
        self.checks = 0
        self.worst: np.ndarray = np.zeros(n_layers)

    def check(self, step: int) -> None:
        norms = torch.stack(torch._foreach_norm([p.detach() for p in self.params], 2)).double()
        sq = torch.zeros(self.n_layers, dtype=torch.float64, device=norms.device).index_add_(
            0, self.owner, norms * norms
        )
        c = sq.sqrt()
        both = torch.stack([c, -c])  # [2, layers]
        torch.distributed.all_reduce(both, op=torch.distributed.ReduceOp.MAX, group=self.group)
        self._pending.append((step, both))

    def read(self, tolerance: float) -> None:
        """Read the pending checks (at the flush): the layers whose replicas differ by more than ``tolerance``."""
        for step, both in self._pending:
            hi, lo = both.cpu().numpy()
            lo = -lo
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.where(hi > 0, (hi - lo) / np.abs(hi), 0.0)
            self.checks += 1
            self.worst = np.fmax(self.worst, rel)
            for layer in np.flatnonzero(rel > tolerance):
                self.first.setdefault(int(layer), (step, float(rel[layer])))
        self._pending = []

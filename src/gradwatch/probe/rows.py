"""The rows a watch queues on the device and turns into host statistics at flush time.

A row is one recorded step: ``[raw accumulators + hook statistics, layers]``. Raw accumulators
(:data:`~gradwatch.probe.stats.RAW_REDUCE`) are partial sums or maxima; when the model is sharded (FSDP2:
parameters are DTensors) every process holds only its shard's part, and :meth:`RowQueue.take` combines the
ranks' rows with **one** collective for all queued steps, layers and accumulators (an all-gather, then a sum or
max per accumulator) before the statistics are finished from them. Hook statistics (activations, backward
gains) describe the local batch and are never combined. Without sharding no collective is made: under DDP the
gradients are already all-reduced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from gradwatch.probe.stats import RAW_REDUCE, Stat


def is_sharded(params: Sequence[Tensor]) -> bool:
    """Whether some parameter is a DTensor sharded over more than one process (FSDP2, tensor parallel)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return False
    return any(any(pl.is_shard() for pl in getattr(p, "placements", ())) for p in params)


class RowQueue:
    """Rows of raw accumulators and hook statistics, queued on the device, finished at :meth:`take`."""

    def __init__(self, raw: Sequence[str], stats: Sequence[Stat], hook_names: Sequence[str], n_layers: int,
                 device: torch.device, sharded: bool):
        self.raw, self.stats, self.hook_names = list(raw), list(stats), list(hook_names)
        self.n_layers, self.device, self.sharded = n_layers, device, sharded
        self.nan = torch.full((n_layers,), float("nan"), device=device)  # never written to
        self._rows: list[Tensor] = []
        self._steps: list[int] = []
        self._current: dict[str, Tensor] = {}

    # ---- the row being measured ------------------------------------------------------------------------------
    def put(self, name: str, values: Tensor, has: Tensor | None) -> None:
        """Set accumulator ``name`` for the layers where ``has`` (all layers when None) in the current row."""
        if has is not None:
            values = torch.where(has, values, self._current.get(name, self.nan))
        self._current[name] = values

    def end(self, step: int, hook_values: Tensor | None) -> None:
        """Queue the current row as ``step`` (``hook_values``: ``[hook statistics, layers]`` or None)."""
        parts = [torch.stack([self._current.get(n, self.nan) for n in self.raw])] if self.raw else []
        if self.hook_names:
            parts.append(hook_values if hook_values is not None else
                         self.nan.expand(len(self.hook_names), self.n_layers))
        self._rows.append(torch.cat(parts) if parts else self.nan.new_zeros(0, self.n_layers))
        self._steps.append(step)
        self._current = {}

    def discard(self) -> None:
        self._current = {}

    def __len__(self) -> int:
        return len(self._rows)

    # ---- flush -----------------------------------------------------------------------------------------------
    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values ``[steps, statistics + hook statistics, layers]``) on the host; empties the queue."""
        if not self._rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, len(self.stats) + len(self.hook_names), self.n_layers))
        values = torch.stack(self._rows)  # [steps, raw + hooks, layers]
        steps = np.asarray(self._steps, dtype=np.int64)
        self._rows, self._steps = [], []
        k = len(self.raw)
        raw = self._combine(values[:, :k]) if self.sharded and k else values[:, :k]
        acc = {n: raw[:, i] for i, n in enumerate(self.raw)}
        out = [s.finish(acc) for s in self.stats] + [values[:, k + j] for j in range(len(self.hook_names))]
        stacked = torch.stack(out, dim=1) if out else values[:, :0]
        return steps, stacked.float().cpu().numpy()

    def _combine(self, raw: Tensor) -> Tensor:
        """The ranks' partial accumulators combined: one all-gather, then sum or max per accumulator."""
        dist = torch.distributed
        gathered = [torch.empty_like(raw) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, raw.contiguous())
        every = torch.stack(gathered)  # [ranks, steps, raw, layers]
        return torch.stack([every[:, :, i].amax(0) if RAW_REDUCE[n] == "max" else every[:, :, i].sum(0)
                            for i, n in enumerate(self.raw)], dim=1)

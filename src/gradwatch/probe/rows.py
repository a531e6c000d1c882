"""The rows a watch queues on the device and turns into host statistics at flush time.

A row is one recorded step. Its measurements are per *parameter* (``[measurements, parameters]``: what one
fused reduction over the gradients gives, so a step costs a handful of tensor operations whatever the model),
with a ``present`` row that says which parameters had a gradient; module-hook statistics come per layer. At
:meth:`RowQueue.take` the queued steps are reduced per layer all at once (sums of squares, sums, maxima over the
layer's present parameters; a layer none of whose parameters was measured is NaN) and, when the model is sharded
(FSDP2: parameters are DTensors, each process holds a shard), the ranks' partial per-layer accumulators are
combined with **one** collective for all queued steps, layers and accumulators (an all-gather, then a sum or
max each) before the statistics are finished from them. Hook statistics describe the local batch and are never
combined. Without sharding no collective is made: under DDP the gradients are already all-reduced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from gradwatch.probe.stats import COUNT, LAYER_REDUCE, PER_PARAM, Stat

PRESENT = "present"


def is_sharded(params: Sequence[Tensor]) -> bool:
    """Whether some parameter is a DTensor sharded over more than one process (FSDP2, tensor parallel)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return False
    return any(any(pl.is_shard() for pl in getattr(p, "placements", ())) for p in params)


class RowQueue:
    """Per-parameter measurements and per-layer hook statistics, queued on the device, finished at take()."""

    def __init__(
        self,
        raw: Sequence[str],
        stats: Sequence[Stat],
        hook_names: Sequence[str],
        owner: Sequence[int],
        numel: Sequence[int],
        n_layers: int,
        device: torch.device,
        sharded: bool,
    ):
        self.raw, self.stats, self.hook_names = list(raw), list(stats), list(hook_names)
        self.n_layers, self.device, self.sharded = n_layers, device, sharded
        self.owner = torch.tensor(list(owner), dtype=torch.long, device=device)
        self.numel = torch.tensor([float(n) for n in numel], device=device)
        self.nan = torch.full((len(self.owner),), float("nan"), device=device)  # shared: never written to
        self.ones = torch.ones(len(self.owner), device=device)  # shared: never written to
        self.layer_nan = torch.full((len(hook_names), n_layers), float("nan"), device=device)
        squares = [PER_PARAM[r][1] == "sumsq" for r in self.raw]
        self._squared = torch.tensor(squares, device=device)[None, :, None] if any(squares) else None
        self._rows: list[list[Tensor]] = []
        self._hooks: list[Tensor] = []
        self._steps: list[int] = []
        self._current: dict[str, Tensor] = {}

    # ---- the row being measured ------------------------------------------------------------------------------
    def put(self, name: str, values: Tensor, index: Tensor | None) -> None:
        """Set measurement ``name`` of the parameters ``index`` (all of them, in order, when None)."""
        if index is None:
            self._current[name] = values
            return
        base = self._current.get(name, self.nan).clone()
        self._current[name] = base.index_copy_(0, index, values.to(base.dtype))

    def mark_present(self, index: Tensor | None, ones: Tensor | None = None) -> None:
        """The parameters ``index`` had a gradient (all of them when None); ``ones``: a tensor of ones as long as
        ``index`` (made here when not given)."""
        if index is None:
            self.put(PRESENT, self.ones, None)
        else:
            self.put(PRESENT, ones if ones is not None else self.ones[: len(index)], index)

    def end(self, step: int, hook_values: Tensor | None) -> None:
        """Queue the current row as ``step`` (``hook_values``: ``[hook statistics, layers]`` or None)."""
        current = self._current  # kept as a list of vectors: stacked once for all queued steps, at take()
        self._rows.append([current.get(PRESENT, self.nan)] + [current.get(n, self.nan) for n in self.raw])
        if self.hook_names:
            self._hooks.append(hook_values if hook_values is not None else self.layer_nan)
        self._steps.append(step)
        self._current = {}

    def discard(self) -> None:
        self._current = {}

    def __len__(self) -> int:
        return len(self._rows)

    # ---- flush -----------------------------------------------------------------------------------------------
    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values ``[steps, statistics + hook statistics, layers]``) on the host; empties the queue."""
        n_out = len(self.stats) + len(self.hook_names)
        if not self._rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, n_out, self.n_layers))
        rows = torch.stack([v for row in self._rows for v in row]).view(len(self._rows), 1 + len(self.raw), -1)
        # [steps, 1 + raw, params]
        hooks = torch.stack(self._hooks) if self.hook_names else None  # [steps, hooks, layers]
        steps = np.asarray(self._steps, dtype=np.int64)
        self._rows, self._hooks, self._steps = [], [], []

        present = rows[:, 0] == 1  # [steps, params]; NaN (never marked) is False
        acc, measured = self._per_layer(rows[:, 1:], present)  # {accumulator: [steps, layers]}, [steps, layers]
        if self.sharded:
            acc = self._combine(acc)
        nan = rows.new_tensor(float("nan"))
        acc = {k: torch.where(measured, v, nan) for k, v in acc.items()}
        out = [s.finish(acc) for s in self.stats] + (
            [hooks[:, j] for j in range(len(self.hook_names))] if hooks is not None else []
        )
        stacked = torch.stack(out, dim=1) if out else rows.new_zeros(len(steps), 0, self.n_layers)
        return steps, stacked.float().cpu().numpy()

    def _per_layer(self, raw: Tensor, present: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """The per-layer accumulators of ``raw`` ``[steps, raw, params]`` over the present parameters (absent ones
        count 0; every sum in one ``index_add``), and which layers had a present parameter ``[steps, layers]``."""
        steps = len(raw)
        values = torch.where(present[:, None], raw, raw.new_zeros(()))
        if self._squared is not None:  # Σ g² from the per-parameter ‖g‖₂: those rows squared (exactly, g·g)
            values = torch.where(self._squared, values * values, values)
        count = present.to(raw.dtype)
        summed = torch.cat([values, (count * self.numel)[:, None], count[:, None]], 1)  # [steps, raw + 2, params]
        sums = summed.new_zeros(steps, summed.shape[1], self.n_layers).index_add_(2, self.owner, summed)
        acc: dict[str, Tensor] = {}
        for i, name in enumerate(self.raw):
            key, how = PER_PARAM[name]
            if how == "max":
                index = self.owner.expand(steps, -1)
                acc[key] = values.new_zeros(steps, self.n_layers).scatter_reduce_(1, index, values[:, i], "amax")
            else:
                acc[key] = sums[:, i]
        acc[COUNT] = sums[:, -2]
        return acc, sums[:, -1] > 0

    def _combine(self, acc: dict[str, Tensor]) -> dict[str, Tensor]:
        """The ranks' partial accumulators combined: one all-gather, then sum or max per accumulator."""
        dist = torch.distributed
        keys = list(acc)
        packed = torch.stack([acc[k] for k in keys]).contiguous()  # [accumulators, steps, layers]
        gathered = [torch.empty_like(packed) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, packed)
        every = torch.stack(gathered)  # [ranks, accumulators, steps, layers]
        return {k: every[:, i].amax(0) if LAYER_REDUCE[k] == "max" else every[:, i].sum(0) for i, k in enumerate(keys)}

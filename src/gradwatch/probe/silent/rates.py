"""The learning rate each watched optimizer's parameter groups step with, read from ``group["lr"]`` after each
step (a Python float; a tensor learning rate is read only on the CPU). A group's rate *collapses* when it falls to
``COLLAPSE_RATIO`` of the highest rate it had (or to 0); the runs of collapsed steps are kept."""

from __future__ import annotations

import torch

COLLAPSE_RATIO = 1e-3  # a learning rate at or below this fraction of its peak (or 0) has collapsed
MAX_RUNS = 8  # collapsed runs kept per group (the first ones)


class _Group:
    __slots__ = ("collapsed", "first_lr", "last_lr", "peak", "runs", "same", "steps")

    def __init__(self) -> None:
        self.peak, self.steps, self.collapsed = 0.0, 0, 0
        self.first_lr: float | None = None
        self.last_lr: float | None = None
        self.runs: list[list] = []  # [first step, steps, lowest lr, peak before it]
        self.same: object = None  # the last step's group["lr"] when it did not collapse (then steps is all it adds)


class Rates:
    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers
        self.groups: dict[tuple[int, int], _Group] = {}

    def after_step(self, k: int, step: int) -> None:
        for j, group in enumerate(self.optimizers[k].param_groups):
            lr = group.get("lr")
            g = self.groups.get((k, j))
            if g is not None and lr is g.same and type(lr) is float:  # the very value of the last step, not collapsed
                g.steps += 1
                continue
            if isinstance(lr, torch.Tensor):
                if lr.device.type != "cpu" or lr.numel() != 1:
                    continue
                lr = float(lr)
            if not isinstance(lr, (int, float)):
                continue
            if g is None:
                g = self.groups[(k, j)] = _Group()
                g.first_lr = float(lr)
            g.steps += 1
            collapsed = lr <= 0 or lr <= COLLAPSE_RATIO * g.peak
            g.peak = max(g.peak, float(lr))
            if collapsed:
                g.collapsed += 1
                if g.last_lr is not None and g.runs and g.runs[-1][0] + g.runs[-1][1] == step:
                    run = g.runs[-1]
                    run[1] += 1
                    run[2] = min(run[2], float(lr))
                elif len(g.runs) < MAX_RUNS:
                    g.runs.append([step, 1, float(lr), g.peak])
            g.last_lr = float(lr)
            g.same = None if collapsed else group.get("lr")  # a float the next step may find again, unchanged

    def to_list(self) -> list[dict]:
        return [
            {
                "optimizer": k,
                "group": j,
                "peak": g.peak,
                "first_lr": g.first_lr,
                "last_lr": g.last_lr,
                "steps": g.steps,
                "collapsed_steps": g.collapsed,
                "runs": [list(r) for r in g.runs],
            }
            for (k, j), g in self.groups.items()
        ]

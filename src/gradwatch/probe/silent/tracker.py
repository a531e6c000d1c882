"""``SilentProbe``: the watch's notes on silent training bugs, gathered at its optimizer hooks.

* every optimizer step: which parameters have a gradient (:mod:`.presence`), the training flags of the model's
  dropout and batch-norm modules (:mod:`.modes`), the learning rate of each parameter group (:mod:`.rates`);
* on check steps (the first ``FIRST_CHECKS`` steps, then every ``CHECK_EVERY``-th): whether the next backward finds
  the previous step's ``.grad`` untouched (:mod:`.stale`: one tensor hook per layer on the first steps and after a
  gradient survived a step, a weak reference per layer otherwise), and under DDP one checksum per layer
  all-reduced across the replicas (:mod:`.replicas`);
* every clipping call while a GradScaler's scale is on the gradients (:mod:`.clip_order`).

Nothing is read from the device between flushes; at each flush :meth:`SilentProbe.write` puts what was seen into
``history.meta["silent"]`` (plain JSON data).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gradwatch.probe.layers import unwrap
from gradwatch.probe.silent import clip_order
from gradwatch.probe.silent.modes import EvalModes
from gradwatch.probe.silent.presence import Presence
from gradwatch.probe.silent.rates import Rates
from gradwatch.probe.silent.replicas import Replicas, replicated_group
from gradwatch.probe.silent.stale import StaleGrads

CHECK_EVERY = 5  # the stale-gradient hooks and the replica checksums run on every 5th step …
FIRST_CHECKS = 3  # … and on each of the first 3 steps after the first optimizer step
REPLICA_TOLERANCE = 1e-5  # replicas whose layer checksums differ by more than this relative spread diverged
PART = "silent-bug checks"


class SilentProbe:
    def __init__(self, watcher: Any):
        self.w = watcher
        params = watcher._params
        root = unwrap(watcher.model)
        names = {id(p): n for n, p in root.named_parameters(remove_duplicate=False)}
        self.param_names = [names.get(id(p), f"{watcher.layers[o].name}.?") for p, o in zip(params, watcher._owner)]
        self.presence = Presence(len(params), watcher.optimizers)
        self.modes = EvalModes(root)
        self.rates = Rates(watcher.optimizers)
        group = replicated_group(watcher.model) if not watcher._queue.sharded else None
        self.replicas = Replicas(params, watcher._owner, len(watcher.layers), group) if group is not None else None
        self.stale = StaleGrads(params, strict=group is None)
        first_of_layer: dict[int, int] = {}
        for i, o in enumerate(watcher._owner):
            first_of_layer.setdefault(o, i)
        self._layer_heads = set(first_of_layer.values())
        self._heads_of: dict[int, tuple[list[int], list[int]]] = {}  # optimizer -> (its indices, their heads)
        self.clips: dict[str, Any] = {"first": None, "steps": 0, "params": [], "scale": None, "function": None}
        self._clip_steps: set[int] = set()
        self._closures: set[int] = set()  # optimizers stepped with a closure: no stale-gradient check
        self._suspect: set[int] = set()  # optimizers whose gradient survived their last step: prove it next step
        self._guard = watcher._guard
        self._on = bool(watcher.optimizers)
        if self._on:
            clip_order.register(self)

    def _checking(self, step: int) -> bool:
        return step <= FIRST_CHECKS or step % CHECK_EVERY == 0

    # ---- at the optimizer hooks ------------------------------------------------------------------------------
    def before_step(self, k: int) -> None:
        if not self._on or not self._guard.active(PART):
            return
        step = self.w._step
        try:  # (a try block: cheaper than the guard's context manager on every step)
            if self.stale.confirm(k, step) is False:  # stepped with a closure: its backward comes after this hook
                self._closures.add(k)
            if self.stale.survived(k) and k not in self._closures:
                self._suspect.add(k)
            if k == 0:
                self.modes.check(step)
                if self.replicas is not None and self._checking(step):
                    self.replicas.check(step)
        except Exception as exc:  # noqa: BLE001 - nothing the watch does may stop training
            self._guard.fail(PART, None, exc, f"step {step}")

    def saw(self, k: int | None, present: list[int]) -> None:
        """Optimizer ``k`` is about to step with gradients on the watched parameters ``present``."""
        if self._on and k is not None:
            known = self.presence.indices.get(k)
            self.presence.saw(k, known if known is not None else self.w._indices(k), present, self.w._step)

    def after_step(self, k: int) -> None:
        if not self._on or not self._guard.active(PART):
            return
        step = self.w._step
        try:
            self.rates.after_step(k, step)
            nxt = step + 1
            if k in self._closures:
                pass
            elif nxt <= FIRST_CHECKS or k in self._suspect:
                self._suspect.discard(k)
                self.stale.arm(k, self._heads(k))
            elif nxt % CHECK_EVERY == 0:
                self.stale.mark(k, self._heads(k))
        except Exception as exc:  # noqa: BLE001
            self._guard.fail(PART, None, exc, f"step {step}")

    def _heads(self, k: int) -> list[int]:
        """The first parameter of each layer that optimizer ``k`` steps (kept while its parameters stay the same)."""
        indices = self.w._indices(k, stepped=True)
        known = self._heads_of.get(k)
        if known is None or known[0] is not indices:
            known = self._heads_of[k] = (indices, [i for i in indices if i in self._layer_heads])
        return known[1]

    def clipping(self, parameters: list[torch.Tensor], scalers: list[Any], what: str) -> None:
        """``what`` is about to clip ``parameters`` while ``scalers`` have scaled a loss since their update()."""
        if not self._guard.active(PART):
            return
        with self._guard(PART, f"step {self.w._step} ({what})"):
            ids = {id(p) for p in parameters}
            mine = [i for i, p in enumerate(self.w._params) if id(p) in ids]
            if not mine:
                return
            owners = [o for o in self.w.optimizers if any(id(p) in ids for g in o.param_groups for p in g["params"])]
            bad = [s for s in scalers for o in owners if clip_order.scaled(s, o)]
            if not bad:
                return
            step = self.w._step
            if self.clips["first"] is None:
                self.clips.update(
                    first=step, params=mine, function=what, scale=float(bad[0].get_scale())
                )  # one host read, at the first such call only
            if step not in self._clip_steps:
                self._clip_steps.add(step)
                self.clips["steps"] += 1

    # ---- at the flush ----------------------------------------------------------------------------------------
    def write(self, meta: dict) -> None:
        if not self._on:
            return
        with self._guard(PART, "flush"):
            w = self.w
            self.presence.fold()
            owned = np.zeros(len(w._params), dtype=bool)
            for k in range(len(w.optimizers)):
                owned[w._indices(k, stepped=True)] = True
            if self.replicas is not None:
                self.replicas.read(REPLICA_TOLERANCE)
            meta["silent"] = {
                "params": self.param_names,
                "param_layer": list(w._owner),
                "requires_grad": [bool(p.requires_grad) for p in w._params],
                "owned": owned.tolist(),
                "owned_elsewhere": self.presence.owned_elsewhere(w._params).tolist(),
                "with_grad": self.presence.with_grad.tolist(),
                "observed": self.presence.observed.tolist(),
                "stale_grad": {str(i): v for i, v in self.stale.found.items()},
                "eval_mode": self.modes.to_dict(),
                "lr": self.rates.to_list(),
                "lr_params": self._group_layers(),
                "clip_scaled": dict(self.clips),
                "replicas": None
                if self.replicas is None
                else {
                    "checks": self.replicas.checks,
                    "every": CHECK_EVERY,
                    "first_checks": FIRST_CHECKS,
                    "diverged": {str(l): list(v) for l, v in self.replicas.first.items()},
                    "worst": self.replicas.worst.tolist(),
                },
                "check_every": CHECK_EVERY,
            }

    def _group_layers(self) -> dict[str, list[str]]:
        """``"k.j"`` -> the watched layers with a parameter in group j of optimizer k."""
        index = {id(p): i for i, p in enumerate(self.w._params)}
        out = {}
        for k, o in enumerate(self.w.optimizers):
            for j, g in enumerate(o.param_groups):
                cols = sorted({self.w._owner[index[id(p)]] for p in g["params"] if id(p) in index})
                out[f"{k}.{j}"] = [self.w.layers[c].name for c in cols]
        return out

    def close(self) -> None:
        self.stale.remove()
        self.presence.remove()
        if self._on:
            clip_order.unregister(self)

"""``watch``: attach to any model, record per-layer gradient statistics every step, detach cleanly.

How it measures (DESIGN.md, "How measurement should work"):

* The default statistics are read from ``p.grad`` after backward — with an optimizer, in its step pre-hook, so
  they describe the accumulated (and, with ``GradScaler``, unscaled) gradient the optimizer steps on, and under
  DDP the all-reduced one; without an optimizer, when the user calls ``w.step()``. They are fused
  (``torch._foreach_norm``), stay on the device, and are copied to the host every ``flush_every`` recorded steps
  (one copy for all layers and statistics). No ``.item()`` per layer per step.
* ``update_ratio`` copies θ before the optimizer step and compares after it (step post-hook).
* Activation and backward-gain statistics and histograms need module hooks, which cost 20–30 % of a step: they
  are opt-in (``stats="full"`` or by name) and sampled every ``sample_every`` steps — the hooks are attached only
  for those steps.
* ``on_nonfinite="raise"`` (or ``"warn"``) checks each recorded step for a non-finite gradient, which costs one
  host read per step; the default ``"record"`` only records the counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gradwatch.errors import ConfigError, check_choice
from gradwatch.probe.history import History
from gradwatch.probe.hooks import LayerProbes
from gradwatch.probe.layers import Layer, find_layers, unwrap
from gradwatch.probe.stats import (ALL_STATS, BACKWARD_STATS, DEFAULT_STATS, FORWARD_STATS, GRAD_STATS, HIST_EDGES,
                                   HISTOGRAM, PARAM_STATS, StepGrads, log10_histogram)
from gradwatch.sinks.outputs import Outputs

NONFINITE_MODES = ("record", "warn", "raise")


class NonFiniteGradientError(FloatingPointError):
    """Raised by a watch with ``on_nonfinite="raise"`` at the first step with a non-finite gradient."""

    def __init__(self, message: str, step: int, layer: str):
        super().__init__(message)
        self.step, self.layer = step, layer


def _positive_int(param: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(param, value, "expected a positive integer")
    return value


def _resolve_stats(stats: str | Iterable[str], has_optimizer: bool) -> list[str]:
    if isinstance(stats, str):
        check_choice("stats", stats, ("default", "full"))
        names = list(DEFAULT_STATS if stats == "default" else ALL_STATS)
    else:
        names = list(dict.fromkeys(stats))
        for name in names:
            check_choice("stats", name, ALL_STATS)
    if not has_optimizer:
        names = [n for n in names if n != "update_ratio"]
    return names


class Watcher:
    """Records per-layer statistics of ``model`` while it trains; see :func:`watch`."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, every: int = 1, *,
                 stats: str | Iterable[str] = "default", sample_every: int = 10, flush_every: int = 50,
                 on_nonfinite: str = "record", param_names: Sequence[str] | None = None, start_step: int = 0,
                 sinks: Sequence[Any] = (), store: Any = None, name: str | None = None, config: Any = None):
        if not isinstance(model, nn.Module):
            raise ConfigError("model", type(model).__name__, "expected a torch.nn.Module")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise ConfigError("optimizer", type(optimizer).__name__, "expected a torch.optim.Optimizer or None")
        self.every = _positive_int("every", every)
        self.sample_every = _positive_int("sample_every", sample_every)
        self.flush_every = _positive_int("flush_every", flush_every)
        self.on_nonfinite = check_choice("on_nonfinite", on_nonfinite, NONFINITE_MODES)
        names = _resolve_stats(stats, optimizer is not None)
        self.model, self.optimizer = model, optimizer
        self.layers: list[Layer] = find_layers(model, tuple(param_names) if param_names is not None else None)

        self._grad_stats = [GRAD_STATS[n] for n in names if n in GRAD_STATS]
        self._weight_norm = "weight_norm" in names
        self._update_ratio = "update_ratio" in names
        self._probes = LayerProbes(self.layers, [FORWARD_STATS[n] for n in names if n in FORWARD_STATS],
                                   [BACKWARD_STATS[n] for n in names if n in BACKWARD_STATS])
        self._histograms = HISTOGRAM in names
        columns = ([s.name for s in self._grad_stats] + ["weight_norm"] * self._weight_norm
                   + ["update_ratio"] * self._update_ratio + self._probes.names)
        self._history = History(
            [l.name for l in self.layers], columns, kinds=[l.kind for l in self.layers],
            numel=[l.numel for l in self.layers],
            activations=[l.activation.fn.name if l.activation else None for l in self.layers],
            hist_edges=HIST_EDGES.tolist() if self._histograms else (),
            meta={"every": self.every, "sample_every": self.sample_every, "activation_scope": _scope(),
                  "chain": _is_chain(unwrap(model)),
                  "param_names": list(param_names) if param_names is not None else None})

        self._params = [p for l in self.layers for p in l.params]
        owner = [i for i, l in enumerate(self.layers) for _ in l.params]
        self._device = self._params[0].device
        self._owner_all = torch.tensor(owner, device=self._device)
        self._numel = torch.tensor([float(l.numel) for l in self.layers], device=self._device)
        self._index_cache: dict[tuple[bool, ...], tuple[Tensor, Tensor]] = {}
        self._before: list[Tensor] | None = None  # θ before the optimizer step (update_ratio)
        self._theta_buffer: list[Tensor] | None = None  # where that copy lives, allocated once
        self._row: list[Tensor] = []  # the current step's statistics, one [layers] tensor each
        self._pending: list[Tensor] = []  # [stats, layers] per recorded step, on the device
        self._pending_steps: list[int] = []
        self._pending_hists: list[tuple[int, Tensor]] = []
        self._warned = False
        self._step = start_step
        self._closed = False
        self._handles = []
        self.sinks, self.store, self.name, self.config = sinks, store, name, config
        self._outputs = Outputs(self)  # sinks and the stored run (gradwatch/sinks/outputs.py)
        if optimizer is not None:
            self._handles = [optimizer.register_step_pre_hook(lambda *_: self._measure()),
                             optimizer.register_step_post_hook(lambda *_: self._finish())]
        self._arm()

    # ---- schedule --------------------------------------------------------------------------------------------
    @property
    def current_step(self) -> int:
        """The number the next recorded step will carry."""
        return self._step

    def _recording(self, step: int) -> bool:
        return step % self.every == 0

    def _sampling(self, step: int) -> bool:
        return self._recording(step) and step % self.sample_every == 0

    def _arm(self) -> None:
        """Attach the module hooks for the coming step if it is sampled, detach them otherwise."""
        if self._probes.names and self._sampling(self._step) and not self._closed:
            self._probes.attach()
        else:
            self._probes.detach()

    # ---- one step --------------------------------------------------------------------------------------------
    def _grads(self) -> StepGrads:
        present = tuple(p.grad is not None for p in self._params)
        if present not in self._index_cache:
            owner = self._owner_all[torch.tensor(present, device=self._device)]
            has = torch.zeros(len(self.layers), dtype=torch.bool, device=self._device)
            has[owner] = True
            self._index_cache[present] = (owner, has)
        owner, has = self._index_cache[present]
        grads = [p.grad.detach() for p in self._params if p.grad is not None]
        self._has_grad = has
        return StepGrads(grads, owner, self._numel, len(self.layers))

    def _measure(self) -> None:
        """Statistics of the gradients and weights now (before the optimizer step)."""
        if self._closed or not self._recording(self._step):
            return
        row: list[Tensor] = []
        if self._grad_stats or self._histograms:
            g = self._grads()
            nan = torch.full((len(self.layers),), float("nan"), device=self._device)
            row = [torch.where(self._has_grad, s.compute(g).float(), nan) for s in self._grad_stats]
            if self._histograms and self._sampling(self._step):
                self._pending_hists.append((self._step, self._histogram()))
            if self.on_nonfinite != "record":
                self._check_finite(g)
        if self._weight_norm or self._update_ratio:
            params = [p.detach() for p in self._params]
            weight_sq = self._per_layer_sq(params)
            if self._weight_norm:
                row.append(PARAM_STATS["weight_norm"].compute(weight_sq))
            if self._update_ratio:
                self._before = self._copy_of(params)
                self._before_sq = weight_sq
        self._row = row

    def _finish(self) -> None:
        """After the optimizer step (or at ``w.step()``): complete the row, queue it, advance the counter."""
        if self._closed:
            return
        if self._recording(self._step):
            row = self._row
            if self._update_ratio and self._before is not None:
                delta = self._before
                torch._foreach_sub_(delta, [p.detach() for p in self._params])  # Δθ, in place in the copy
                row.append(PARAM_STATS["update_ratio"].compute(self._per_layer_sq(delta), self._before_sq))
                self._before = None  # the buffer itself is kept in self._theta_buffer for the next step
            if self._probes.names:
                sampled = self._probes.take(self._device) if self._sampling(self._step) else None
                row.extend(sampled if sampled is not None else
                           torch.full((len(self._probes.names), len(self.layers)), float("nan"),
                                      device=self._device))
            self._pending.append(torch.stack(row) if row else torch.zeros(0, len(self.layers)))
            self._pending_steps.append(self._step)
            self._row = []
            if len(self._pending) >= self.flush_every:
                self.flush()
        self._step += 1
        self._arm()

    def _copy_of(self, params: list[Tensor]) -> list[Tensor]:
        """θ copied into a buffer allocated once and reused every step (update_ratio's one extra copy of the
        weights): allocating it anew each step cost more than the copy itself on the CPU (measured)."""
        buf = self._theta_buffer
        if buf is None or any(b.shape != p.shape or b.dtype != p.dtype or b.device != p.device
                              for b, p in zip(buf[:1], params[:1])) or len(buf) != len(params):
            buf = self._theta_buffer = [torch.empty_like(p) for p in params]
        torch._foreach_copy_(buf, params)
        return buf

    def _per_layer_sq(self, tensors: list[Tensor]) -> Tensor:  # Σx² per layer -> [layers]
        sq = torch.stack(torch._foreach_norm(tensors, 2)).float().square()
        return sq.new_zeros(len(self.layers)).index_add_(0, self._owner_all, sq)

    def _histogram(self) -> Tensor:  # [layers, bins]
        edges = HIST_EDGES.to(self._device)
        rows = []
        for layer in self.layers:
            grads = [p.grad for p in layer.params if p.grad is not None]
            rows.append(log10_histogram(grads, edges) if grads else torch.zeros(len(edges) - 1, device=self._device))
        return torch.stack(rows)

    def _check_finite(self, g: StepGrads) -> None:
        counts = GRAD_STATS["nonfinite"].compute(g)
        if not bool((counts > 0).any()):  # one host read per step, only with on_nonfinite="raise"/"warn"
            return
        counts = counts.cpu().numpy()
        backward_first = self.layers[int(np.flatnonzero(counts)[-1])].name
        message = (f"non-finite gradient at step {self._step}: {int(counts.sum())} elements in "
                   f"{int((counts > 0).sum())} of {len(self.layers)} layers; first in backward order: "
                   f"{backward_first}")
        emitted = self._probes.peek_nonfinite_layer() if self._probes.attached else None
        if emitted is not None:
            message += f"; the first layer whose output was non-finite (forward order): {self.layers[emitted].name}"
        layer = self.layers[emitted].name if emitted is not None else backward_first
        if self.on_nonfinite == "raise":
            raise NonFiniteGradientError(message, self._step, layer)
        if not self._warned:
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            self._warned = True

    # ---- public ----------------------------------------------------------------------------------------------
    def step(self) -> None:
        """Record the statistics of the gradients now in ``p.grad``: call it after ``backward()`` when the watch
        has no optimizer (with one, its step hooks do this)."""
        if self._closed:
            raise RuntimeError("this watch is closed; create a new one with gradwatch.watch(model)")
        if self.optimizer is not None:
            raise RuntimeError("this watch follows its optimizer's steps; do not call w.step() as well")
        self._measure()
        self._finish()

    def flush(self) -> None:
        """Copy the queued statistics to the host (one copy for all steps, layers and statistics)."""
        steps = values = None
        if self._pending:
            values = torch.stack(self._pending).cpu().numpy()  # [steps, stats, layers]
            steps = np.asarray(self._pending_steps)
            self._history.append(steps, values)
            self._pending, self._pending_steps = [], []
        hists = [(step, counts.cpu().numpy()) for step, counts in self._pending_hists]
        for step, counts in hists:
            self._history.append_histogram(step, counts)
        self._pending_hists = []
        self._outputs.write(self._history, steps, values, hists)  # to the sinks and the run store

    def close(self) -> None:
        """Remove every hook from the model and optimizer and copy what is queued to the history. Idempotent."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._probes.detach()
        self.flush()
        self._outputs.close(self.diagnose)  # the diagnosis to the sinks and the run store; closes them
        self._before = self._theta_buffer = None  # free the copy of θ
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def history(self) -> History:
        """The record so far (reading it first copies what is queued to the host)."""
        self.flush()
        return self._history

    def diagnose(self, **thresholds: Any):
        """Findings from the history: see :func:`gradwatch.diagnose.diagnose` for the thresholds."""
        from gradwatch.diagnose import diagnose

        return diagnose(self.history, **thresholds)

    def report(self, console=None, *, html: Any = None, **thresholds: Any) -> Any:
        """Print the per-layer table and the diagnosis (rich) to ``console`` (stdout by default); with
        ``html=PATH``, write the self-contained report page there instead and return its path."""
        if html is not None:
            from gradwatch.report.watch_page import write_watch_page

            return write_watch_page(html, self.history, self.diagnose(**thresholds),
                                    title=self.name or type(unwrap(self.model)).__name__)
        from gradwatch.report.watch_table import print_watch_report

        print_watch_report(self.history, self.diagnose(**thresholds), console=console)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<gradwatch watch of {type(unwrap(self.model)).__name__}: {len(self.layers)} layers, {state}>"


def _is_chain(root: nn.Module) -> bool:
    """Whether the layers form one chain (only ``nn.Sequential`` containers), so that their backward gains
    multiply: the gradient reaching layer l is the product of the gains of the layers after it."""
    return all(isinstance(m, nn.Sequential) for m in root.modules() if next(m.children(), None) is not None)


def _scope() -> str:
    """``"global"``, or ``"local to rank r of n"`` under torch.distributed: module hooks see the local batch."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return f"local to rank {dist.get_rank()} of {dist.get_world_size()}"
    return "global"


def watch(model: nn.Module, optimizer: torch.optim.Optimizer | None = None, every: int = 1, **options: Any
          ) -> Watcher:
    """Watch ``model``'s per-layer gradient flow while it trains.

    Use as a context manager, ``with gw.watch(model, optimizer=opt) as w: ...``, or ``w = gw.watch(...)`` and
    ``w.close()`` when done. With an optimizer the statistics are taken at each ``optimizer.step()``; without
    one, call ``w.step()`` after each backward.

    Options: ``every`` (record every n-th step, default 1); ``stats`` (``"default"``: grad_norm, grad_abs_mean,
    grad_abs_max, nonfinite, weight_norm and, with an optimizer, update_ratio; ``"full"``: also act_mean,
    act_std, act_saturation, act_dead, act_nonfinite, backward_gain, gain_activation and log10|g| histograms;
    or a list of names); ``sample_every`` (hook statistics on every k-th step, default 10); ``flush_every``
    (host copy every n recorded steps, default 50); ``on_nonfinite`` (``"record"`` (default), ``"warn"`` or
    ``"raise"``); ``param_names`` (only parameters with these local names, e.g. ``("weight",)``);
    ``start_step`` (number of the first step, default 0); ``sinks`` (e.g. ``[gradwatch.sinks.TensorBoard(dir)]``,
    written at every flush); ``store`` (a run-store path: the run, ``name`` and the ``config`` you pass are
    stored, for ``gradwatch runs / show / report / compare``).
    """
    return Watcher(model, optimizer, every, **options)

"""``watch``: attach to any model, record per-layer gradient statistics every step, detach cleanly.

How it measures (DESIGN.md, "How measurement should work"):

* The statistics are read from ``p.grad`` after backward — with optimizers, in their step pre-hooks, so they
  describe the accumulated (and, with ``GradScaler``, unscaled) gradient the optimizer steps on, and under DDP
  the all-reduced one; without an optimizer, when the user calls ``w.step()``. They are fused
  (``torch._foreach_norm``), stay on the device as raw per-layer sums (so the shards of an FSDP2 model combine
  with one collective per flush), and are copied to the host every ``flush_every`` recorded steps (one copy for
  all layers and statistics). No ``.item()`` per layer per step.
* ``grad_norm`` and ``nonfinite`` are taken on every recorded step; the other statistics (``grad_abs_mean``,
  ``grad_abs_max``, ``weight_norm``, ``update_ratio`` — which copies θ before the step — and the module-hook
  statistics) on every ``sample_every``-th step, step 0 included. Module hooks are attached only for those steps.
* The gradient is also measured at the end of every backward pass; when the loop changes it before the
  optimizer's step (clipping, by any function), that measurement is the step's ``grad_norm_preclip``
  (:mod:`gradwatch.probe.preclip`).
  A step that ``GradScaler`` skips is recorded from the gradients it would have taken (``meta["skipped_steps"]``).
* Several optimizers (``optimizer=[opt_g, opt_d]``): each measures the layers it steps; a step of the watch ends
  when every optimizer has stepped once (or one steps again). A parameter without a gradient on a step is
  unmeasured there (NaN), never zero; so is a frozen layer, until it is unfrozen.
* A failure inside the watch never stops training: it is reported once and that part of the watch is disabled.
* ``on_nonfinite="raise"`` (or ``"warn"``) checks each recorded step for a non-finite gradient, which costs one
  host read per step; the default ``"record"`` only records the counts.
"""

from __future__ import annotations

import functools
import operator
import threading
import warnings
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gradwatch.errors import ConfigError, check_choice
from gradwatch.probe import patches
from gradwatch.probe.graph import GraphProbe
from gradwatch.probe.guard import Guard
from gradwatch.probe.histogram import log10_histograms
from gradwatch.probe.history import History
from gradwatch.probe.hooks import LayerProbes
from gradwatch.probe.layers import Layer, find_layers, unwrap
from gradwatch.probe.locate import Locator
from gradwatch.probe.preclip import GRAD, IS_NONE, PreClip
from gradwatch.probe.rows import RowQueue, is_sharded
from gradwatch.probe.silent import SilentProbe
from gradwatch.probe.stats import (
    ALL_STATS,
    BACKWARD_STATS,
    DEFAULT_STATS,
    FORWARD_STATS,
    HIST_EDGES,
    HISTOGRAM,
    PER_PARAM,
    RAW,
    STATS,
    StepGrads,
    free_reads,
    fused_norms,
    local,
    stored,
)
from gradwatch.probe.units import NAME as GRAD_DEAD
from gradwatch.probe.units import DeadRows
from gradwatch.stat_names import UPDATE_RATIO

NONFINITE_MODES = ("record", "warn", "raise", "locate")
_LAYOUT, _REQUIRES_GRAD = operator.attrgetter("layout"), operator.attrgetter("requires_grad")  # read in C
_IS_STRIDED = functools.partial(operator.is_, torch.strided)
GRADS, UPDATES, HOOKS = "gradient statistics", "update statistics", "module-hook statistics"
LOCATE = "non-finite location checks"


class NonFiniteGradientError(FloatingPointError):
    """Raised by a watch with ``on_nonfinite="raise"`` at the first step with a non-finite gradient."""

    def __init__(self, message: str, step: int, layer: str):
        super().__init__(message)
        self.step, self.layer = step, layer


def _positive_int(param: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(param, value, "expected a positive integer")
    return value


def _optimizers(optimizer: Any) -> list[torch.optim.Optimizer]:
    if optimizer is None:
        return []
    items = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]
    for o in items:
        if not isinstance(o, torch.optim.Optimizer):
            raise ConfigError(
                "optimizer", type(o).__name__, "expected a torch.optim.Optimizer, a list of them, or None"
            )
    if not items:
        raise ConfigError("optimizer", [], "expected a torch.optim.Optimizer, a non-empty list of them, or None")
    return items


def _resolve_stats(stats: str | Iterable[str], has_optimizer: bool) -> list[str]:
    if not isinstance(stats, (str, list, tuple, set, frozenset)):
        raise TypeError(
            f"stats={stats!r} is not allowed: expected 'default', 'full' or a list of statistic names "
            "(" + ", ".join(ALL_STATS) + ")"
        )
    if isinstance(stats, str):
        check_choice("stats", stats, ("default", "full"))
        names = list(DEFAULT_STATS if stats == "default" else ALL_STATS)
    else:
        names = list(dict.fromkeys(stats))
        if not names:
            raise ConfigError("stats", [], "expected 'default', 'full' or a non-empty list of: " + ", ".join(ALL_STATS))
        for name in names:
            check_choice("stats", name, ALL_STATS)
    if not has_optimizer:
        names = [n for n in names if n != UPDATE_RATIO]
    return names


class _NoGrad:
    """``torch.no_grad()`` for the watch's own blocks, without its decorator machinery (these run in training
    steps, where every microsecond of Python shows on a small model)."""

    __slots__ = ("prev",)

    def __enter__(self) -> None:
        self.prev = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)

    def __exit__(self, *exc: Any) -> None:
        torch._C._set_grad_enabled(self.prev)


class _Cached:
    """Index tensors for one optimizer's watched parameters with a given pattern of present gradients."""

    __slots__ = ("index", "ones", "present")

    def __init__(self, present: list[int], n_params: int, device: torch.device):
        self.present = present
        identity = present == list(range(n_params))
        self.index = None if identity else torch.tensor(present, dtype=torch.long, device=device)
        self.ones = None if identity else torch.ones(len(present), device=device)


class Watcher:
    """Records per-layer statistics of ``model`` while it trains; see :func:`watch`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Any = None,
        every: int = 1,
        *,
        stats: str | Iterable[str] = "default",
        sample_every: int = 10,
        flush_every: int = 100,
        on_nonfinite: str = "record",
        param_names: Sequence[str] | None = None,
        start_step: int = 0,
        sinks: Sequence[Any] = (),
        store: Any = None,
        name: str | None = None,
        config: Any = None,
        outlet: Any = None,
    ):
        if not isinstance(model, nn.Module):
            raise ConfigError("model", type(model).__name__, "expected a torch.nn.Module")
        self.optimizers = _optimizers(optimizer)
        self.every = _positive_int("every", every)
        self.sample_every = _positive_int("sample_every", sample_every)
        self.flush_every = _positive_int("flush_every", flush_every)
        self.on_nonfinite = check_choice("on_nonfinite", on_nonfinite, NONFINITE_MODES)
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ConfigError("start_step", start_step, "expected an integer ≥ 0")
        names = _resolve_stats(stats, bool(self.optimizers))
        self.model = model
        self.layers: list[Layer] = find_layers(model, tuple(param_names) if param_names is not None else None)
        n = len(self.layers)

        self._stats = [STATS[s] for s in names if s in STATS]

        def measured(every_step: bool | None) -> list[str]:  # the per-parameter measurements these stats need
            needs = {a for s in self._stats if every_step is None or s.every_step == every_step for a in s.needs}
            return [r for r in RAW if PER_PARAM[r][0] in needs]

        raw = measured(None)
        self._raw_every = [r for r in measured(True) if r.startswith("grad_")]
        self._raw_sampled = [r for r in raw if r.startswith("grad_") and r not in self._raw_every]
        self._weight_sq = "weight_l2" in raw or "weight_bad" in raw
        self._weight_bad = "weight_bad" in raw
        self._update = "delta_l2" in raw
        self._preclip = "preclip_l2" in raw
        self._guard = Guard(passthrough=(NonFiniteGradientError,))
        self._probes = LayerProbes(
            self.layers,
            [FORWARD_STATS[s] for s in names if s in FORWARD_STATS],
            [BACKWARD_STATS[s] for s in names if s in BACKWARD_STATS],
            self._guard,
        )
        self._histograms = HISTOGRAM in names
        self._locator = Locator(self.layers) if self.on_nonfinite == "locate" else None
        self._params = [p for l in self.layers for p in l.params]
        # grad_dead reads whole rows of ∂L/∂W: not for sharded parameters (FSDP2), whose rows are split over ranks
        self._dead = (
            DeadRows(self.layers, self._params) if GRAD_DEAD in names and not is_sharded(self._params) else None
        )
        self._dead_now: Tensor | None = None  # grad_dead of the current row
        hook_names = (
            self._probes.names
            + (list(self._locator.names) if self._locator else [])
            + ([GRAD_DEAD] if self._dead is not None else [])
        )
        self._owner = [i for i, l in enumerate(self.layers) for _ in l.params]
        self._device = self._params[0].device
        self._free = free_reads(self._device)  # host reads in a step cost no device sync here (the CPU)
        self._queue = RowQueue(
            raw,
            self._stats,
            hook_names,
            self._owner,
            [local(p).numel() for p in self._params],
            n,
            self._device,
            is_sharded(self._params),
        )
        self._local = local if self._queue.sharded else stored  # a sparse gradient: its stored values
        self._history = History(
            [l.name for l in self.layers],
            [s.name for s in self._stats] + hook_names,
            kinds=[l.kind for l in self.layers],
            numel=[l.numel for l in self.layers],
            activations=[l.activation.fn.name if l.activation else None for l in self.layers],
            hist_edges=HIST_EDGES.tolist() if self._histograms else (),
            meta={
                "every": self.every,
                "sample_every": self.sample_every,
                "activation_scope": _scope(),
                "chain": _is_chain(unwrap(model)),
                "optimizers": [type(o).__name__ for o in self.optimizers],
                "aliases": {l.name: l.aliases for l in self.layers if l.aliases},
                "param_names": list(param_names) if param_names is not None else None,
                "sharded": self._queue.sharded,
                "skipped_steps": [],
                "disabled": {},
                "vectors": [all(p.dim() <= 1 for p in l.params) for l in self.layers],
            },
        )

        self._index = {id(p): i for i, p in enumerate(self._params)}
        self._all = list(range(len(self._params)))  # never changed
        self._measured: dict[int, tuple[tuple[int, ...], list[int], list[int]]] = {}  # k -> (signature, measured,
        #                                                                                         stepped by k)
        self._cache: dict[tuple, _Cached] = {}
        self._broken: set[int] = set()  # parameters whose gradient could not be measured (see _isolate)
        self._before: dict[int, tuple[list[Tensor], _Cached]] = {}  # θ before optimizer k's step
        self._theta: dict[int, list[Tensor]] = {}  # buffers for that copy, allocated once per optimizer
        self._stepped: set[int] = set()  # optimizers that stepped in the current row
        self._pending_hists: list[tuple[int, Tensor]] = []
        self._warned = False
        self._optimizer_steps = 0
        self._step = start_step
        self._closed = False
        self._handles = []
        for k, opt in enumerate(self.optimizers):
            self._handles += [
                opt.register_step_pre_hook(functools.partial(self._before_step, k)),  # (optimizer, args, kwargs)
                opt.register_step_post_hook(functools.partial(self._after_step, k)),  # follow k: ignored
            ]
        self._graph = GraphProbe(unwrap(model), {id(p): o for p, o in zip(self._params, self._owner)}, n, self._guard)
        self._preclips = PreClip(self._params) if self._preclip else None
        self._before_clip_now = False  # w.step(before_clip=True): these gradients are the pre-clip ones
        self._thread: int | None = None  # the thread of the steps (known from the first one)
        patches.register(self)
        self._silent = SilentProbe(self)  # notes on silent training bugs (docs/silent-bugs.md)
        self.sinks, self.store, self.name, self.config = sinks, store, name, config
        # where the rows go besides the history — the sinks, the run store — is the outlet's business, made by
        # the facade (gradwatch.watching: outlet=sinks.outputs.Outputs); the probe itself only records
        try:
            self._outputs = outlet(self, self._guard) if outlet is not None else _NoOutlet(self)
        except BaseException:
            self._unhook()  # a bad sink, store, name or config leaves the model and optimizer as they were
            raise
        self._arm()

    # ---- schedule --------------------------------------------------------------------------------------------
    @property
    def current_step(self) -> int:
        """The number the next recorded step will carry."""
        return self._step

    def _recording(self, step: int | None = None) -> bool:
        return (self._step if step is None else step) % self.every == 0

    def _sampling(self, step: int | None = None) -> bool:
        step = self._step if step is None else step
        return self._recording(step) and step % self.sample_every == 0

    def _arm(self) -> None:
        """Attach the module hooks for the coming step if it is sampled, detach them otherwise; say whether the
        coming backward passes are measured."""
        if self._preclips is not None:
            self._preclips.measuring = not self._closed and self._recording() and self._guard.active(GRADS)
        if self._probes.names and self._sampling() and not self._closed and self._guard.active(HOOKS):
            with self._guard(HOOKS, "attaching module hooks"):
                self._probes.attach()
        elif self._probes.attached:
            self._probes.detach()
        if self._locator is not None and not self._closed and self._guard.active(LOCATE):
            with self._guard(LOCATE, "attaching the finite checks"):
                self._locator.attach()

    # ---- which parameters each optimizer steps ---------------------------------------------------------------
    def _indices(self, k: int | None, stepped: bool = False) -> list[int]:
        """Indices (into the watched parameters) measured at optimizer ``k``'s step (all of them for None).
        Parameters that no watched optimizer steps are measured with the first one, but only ``stepped=True``
        (the update statistics) leaves them out: whatever steps them is not watched. Recomputed when the
        optimizers' parameter groups change (``add_param_group`` after unfreezing)."""
        if k is None:
            return self._all
        signature = tuple(len(g["params"]) for o in self.optimizers for g in o.param_groups)
        known = self._measured.get(k)
        if known is None or known[0] != signature:
            owned = [
                sorted({self._index[id(p)] for g in o.param_groups for p in g["params"] if id(p) in self._index})
                for o in self.optimizers
            ]
            claimed = {i for idx in owned for i in idx}
            unclaimed = [i for i in range(len(self._params)) if i not in claimed]
            for j, idx in enumerate(owned):
                self._measured[j] = (signature, sorted(idx + unclaimed) if j == 0 else idx, idx)
            known = self._measured[k]
        return known[2] if stepped else known[1]

    def _present(self, k: Hashable, indices: list[int]) -> tuple[_Cached, list[Tensor], list[Tensor]] | None:
        """The parameters among ``indices`` that have a gradient now, with their cached index tensors, those
        gradients as measured (a sparse gradient's values, a DTensor's local shard; detached when made with
        ``create_graph=True``) and as they are (``.grad``, whose identity and version the pre-clip measurement
        stamps). Each ``.grad`` is read once."""
        params, broken = self._params, self._broken
        raw: list = list(map(GRAD, params)) if indices is self._all else [params[i].grad for i in indices]
        if broken or any(map(IS_NONE, raw)):  # the rare case: some have no gradient, or cannot be measured
            kept = [(i, g) for i, g in zip(indices, raw) if g is not None and i not in broken]
            present, raw = [i for i, _ in kept], [g for _, g in kept]
        else:
            present = indices
        if not present:
            return None
        plain = not self._queue.sharded and all(map(_IS_STRIDED, map(_LAYOUT, raw)))
        grads = raw if plain else [self._local(g) for g in raw]
        if any(map(_REQUIRES_GRAD, grads)):  # made with create_graph=True: measured detached, no graph kept
            grads = [g.detach() for g in grads]
        key = (k, tuple(present))
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 256:  # patterns of unused parameters (mixture of experts) are bounded here
                self._cache.clear()
            cached = self._cache[key] = _Cached(present, len(params), self._device)
        return cached, grads, raw

    # ---- one step --------------------------------------------------------------------------------------------
    def _measure_grads(self, k: int | None, raw_names: list[str], rename: str = "") -> StepGrads | None:
        indices = self._indices(k)
        same = None  # the end-of-backward measurement, when nothing touched the gradients since (the common case)
        if not rename and not self._before_clip_now and self._preclips is not None:
            same = self._preclips.untouched(indices)
        found = same.found if same is not None else self._present(k, indices)
        if found is None:
            return None
        cached, grads, raw = found
        g = StepGrads(grads, self._free, self._device)
        try:
            if same is not None:
                g.l2 = same.norms  # these gradients' norms: not computed twice, and no pre-clip value
            elif not rename:
                self._preclip_of(cached, g, raw)
            values = [(name, g.raw(name)) for name in raw_names]
        except Exception as exc:  # noqa: BLE001 - find the parameters that fail; switch off only their layers
            if not self._isolate(cached.present, grads, raw_names):
                raise exc from None
            return self._measure_grads(k, raw_names, rename)
        for name, value in values:
            self._queue.put(rename or name, value, cached.index)
        if not rename:
            self._silent.saw(k, cached.present)
            self._queue.mark_present(cached.index, cached.ones)
            g.present, g.cached = cached.present, cached
        return g

    def _isolate(self, present: list[int], grads: list[Tensor], raw_names: list[str]) -> bool:
        """After a fused measurement failed: measure each gradient alone; switch off the layers of those that fail
        (the others go on being measured). Whether any was found."""
        found = False
        for i, grad in zip(present, grads):
            try:
                one = StepGrads([grad])
                for name in raw_names:
                    one.raw(name)
            except Exception as exc:  # noqa: BLE001 - nothing the watch does may stop training
                self._broken.add(i)
                self._guard.fail(GRADS, self.layers[self._owner[i]].name, exc)
                found = True
        return found

    def _preclip_of(self, cached: _Cached, g: StepGrads, raw: list[Tensor]) -> None:
        """The step's pre-clip norms: those measured at the end of backward when the loop changed the gradients
        since (and then ``g``'s own norms are measured anew), else ``g``'s norms are those (measured once)."""
        if self._before_clip_now:
            self._queue.put("preclip_l2", g.l2, cached.index)
            return
        seen = self._preclips.lookup(cached.present, raw) if self._preclips is not None else None
        if seen is None:
            return
        norms, changed = seen
        if changed:
            self._queue.put("preclip_l2", norms, cached.index)
        else:
            g.l2 = norms  # the same gradients, untouched since: their norms are not computed twice

    def _before_backward(self, tensors: Any) -> Any:
        """``backward()`` is about to run on ``tensors`` (:mod:`gradwatch.probe.patches`): the first step's graph is
        read; returns what :meth:`_after_backward` needs, or None when the coming backward is not measured."""
        if self._thread is not None and self._thread != threading.get_ident():
            return None  # another thread's training (the playground trains runs in threads): not this watch's
        if self._graph.waiting:
            self._graph.on_backward(tensors)
        if self._preclips is None or not self._guard.active(GRADS):
            return None
        with self._guard(GRADS, "before backward", step=self._step):
            return self._preclips.snapshot()
        return None  # (it failed: reported and switched off)

    def _after_backward(self, snapshot: Any) -> None:
        """The backward call returned: measured when it changed this watch's gradients."""
        if self._preclips is None or not self._guard.active(GRADS):
            return
        reached = False
        with self._guard(GRADS, "after backward", step=self._step):
            reached = self._preclips.reached(snapshot)
        if reached:
            self._backward_end()

    def _backward_end(self) -> None:
        """The end of a backward call (or of ``GradScaler.unscale_``): measure the gradients before the loop
        touches them (see :mod:`gradwatch.probe.preclip`)."""
        if self._closed or self._preclips is None or not self._recording() or not self._guard.active(GRADS):
            return
        with self._guard(GRADS, "end of backward", step=self._step):
            for _ in range(2):  # a second time without the parameters whose gradient cannot be measured
                found = self._present(None, self._indices(None))
                if found is None:
                    return
                cached, grads, raw = found
                try:
                    norms = fused_norms(grads)  # (detached by _present: the kept norms hold no graph)
                except Exception as exc:  # noqa: BLE001 - switch off only the layers whose gradient fails
                    if not self._isolate(cached.present, grads, ["grad_l2"]):
                        raise exc from None
                    continue
                self._preclips.note(cached.present, norms, raw, found)
                return

    def _before_step(self, k: int | None, *_: Any) -> None:
        """Optimizer ``k`` is about to step (or ``w.step()`` was called): measure its gradients and weights."""
        if self._closed:
            return
        if k is not None and k in self._stepped:  # it steps again before the others did: the row is complete
            self._end_row()
        self._thread = threading.get_ident()  # the thread that trains: only its backward calls are this watch's
        if k is not None:
            self._silent.before_step(k)
        if not self._recording():
            return
        sampled = self._sampling()
        g = None
        if self._guard.active(GRADS):
            with self._guard(GRADS, step=self._step):  # (the gradients come detached: no no_grad() needed)
                g = self._measure_grads(k, self._raw_every + self._raw_sampled if sampled else self._raw_every)
                if sampled and self._histograms:
                    with _NoGrad():
                        self._pending_hists.append((self._step, self._histogram()))
        if self._dead is not None and self._guard.active(GRAD_DEAD):
            with self._guard(GRAD_DEAD, step=self._step), _NoGrad():
                dead = self._dead.measure(self._indices(k), self._device)
                if dead is not None:
                    self._dead_now = dead if self._dead_now is None else torch.where(dead.isnan(), self._dead_now, dead)
        # the weights are measured on sampled steps, and on a step whose gradient is known (on the CPU, without a
        # device sync) to be non-finite: a weight that holds the inf/NaN itself is then named as the origin
        weights_now = sampled or (g is not None and g.any_nonfinite is True)
        if weights_now and (self._weight_sq or self._update) and self._guard.active(UPDATES):
            with self._guard(UPDATES, step=self._step):
                self._measure_weights(k, g)
        if g is not None and self.on_nonfinite in ("warn", "raise"):  # after the weights: they may be the origin
            self._check_finite(g)

    def _measure_weights(self, k: int | None, g: StepGrads | None) -> None:
        """‖θ‖ of the parameters measured at this step, and — for the update ratio — θ copied before optimizer
        ``k`` steps, with its norm (the same norms when the same parameters: computed once)."""
        measured: tuple[list[int], Tensor] | None = None  # (parameters, their norms)
        cached = g.cached if g is not None else None  # the parameters whose gradients were just measured
        if cached is None:
            found = self._present(k, self._indices(k))
            cached = found[0] if found is not None else None
        with _NoGrad():  # the parameters themselves, no graph (cheaper than a detach() each)
            if cached is not None:
                params = self._weights(cached.present)
                norms = fused_norms(params)
                measured = (cached.present, norms)
                if self._weight_sq:
                    self._queue.put("weight_l2", norms, cached.index)
                if self._weight_bad:
                    self._queue.put("weight_bad", self._nonfinite_weights(params, norms), cached.index)
            if not self._update or k is None:
                return
            indices = self._indices(k, stepped=True)
            if cached is not None and indices == cached.present:  # the same parameters (one optimizer, all present)
                stepped = cached
            else:
                found = self._present(("stepped", k), indices)
                if found is None:
                    return
                stepped = found[0]
            if measured is not None and measured[0] == stepped.present:
                before = measured[1]
            else:
                params = self._weights(stepped.present)
                before = fused_norms(params)
            self._before[k] = (self._copy_of(k, params), stepped)
            self._queue.put("before_l2", before, stepped.index)

    def _weights(self, present: list[int]) -> list[Tensor]:
        """The watched parameters ``present`` as measured (a DTensor's local shard); read them under no_grad."""
        params = self._params
        return [self._local(params[i]) for i in present] if self._queue.sharded else [params[i] for i in present]

    def _after_step(self, k: int, *_: Any) -> None:
        """Optimizer ``k`` has stepped: the size of its update; end the row when every optimizer has stepped."""
        if self._closed:
            return
        self._optimizer_steps += 1
        self._silent.after_step(k)
        before = self._before.pop(k, None)
        if before is not None and self._guard.active(UPDATES):
            with self._guard(UPDATES, step=self._step), _NoGrad():
                delta, cached = before
                torch._foreach_sub_(delta, self._weights(cached.present))  # Δθ
                self._queue.put("delta_l2", fused_norms(delta), cached.index)
        self._stepped.add(k)
        if len(self._stepped) == len(self.optimizers):
            self._end_row()

    def _end_row(self) -> None:
        """Queue the current row (with the hook statistics of a sampled step), advance the step counter."""
        if self._recording():
            self._queue.end(self._step, self._hook_values())
            if len(self._queue) >= self.flush_every:
                self.flush()
        else:
            self._queue.discard()
            self._dead_now = None
        if self._preclips is not None:
            self._preclips.reset()
        if self._graph.waiting:
            self._graph.settle()  # the first step's losses are read
        self._stepped.clear()
        self._step += 1
        self._arm()

    def _nonfinite_weights(self, params: list[Tensor], norms: Tensor) -> Tensor:
        """Non-finite elements per parameter, as for the gradients (:attr:`StepGrads.nonfinite`): on the CPU
        counted only where a weight norm is not finite (an overflowing norm of finite weights counts 0); elsewhere
        always (no device sync)."""
        weights = StepGrads(params, self._free, self._device)
        weights.l2 = norms
        return weights.nonfinite

    def _hook_values(self) -> Tensor | None:
        """The step's module-hook statistics and finite checks ``[hook columns, layers]`` (None: none taken)."""
        parts: list[Tensor] = []
        if self._probes.names:
            values = None
            if self._sampling() and self._probes.attached:
                with self._guard(HOOKS, step=self._step):
                    values = self._probes.take(self._device)
            parts.append(values if values is not None else self._queue.layer_nan[: len(self._probes.names)])
        if self._locator is not None:
            values = None
            if self._guard.active(LOCATE):
                with self._guard(LOCATE, step=self._step):
                    values = self._locator.take(self._device)
            parts.append(values if values is not None else self._queue.layer_nan[: len(self._locator.names)])
        if self._dead is not None:
            dead, self._dead_now = self._dead_now, None
            parts.append(dead[None] if dead is not None else self._queue.layer_nan[:1])
        return torch.cat(parts) if parts else None

    def _copy_of(self, k: int, params: list[Tensor]) -> list[Tensor]:
        """θ copied into buffers allocated once per optimizer and reused (allocating anew each step cost more
        than the copy itself on the CPU, measured); reallocated when the set of parameters changes."""
        buf = self._theta.get(k)
        if (
            buf is None
            or len(buf) != len(params)
            or any(b.shape != p.shape or b.dtype != p.dtype for b, p in zip(buf, params))
        ):
            buf = self._theta[k] = [torch.empty_like(p) for p in params]
        torch._foreach_copy_(buf, params)
        return buf

    def _optimizer_of(self) -> list[int | None]:
        """Per layer, the watched optimizer that steps its parameters (the first, if several); None where none
        does (a layer added after the optimizer was built). Without optimizers: 0 for every layer."""
        if not self.optimizers:
            return [0] * len(self.layers)
        out: list[int | None] = [None] * len(self.layers)
        for k in reversed(range(len(self.optimizers))):
            for i in self._indices(k, stepped=True):
                out[self._owner[i]] = k
        return out

    def _histogram(self) -> Tensor:  # [layers, bins]
        grads = [[local(p.grad) for p in layer.params if p.grad is not None] for layer in self.layers]
        return log10_histograms(grads, HIST_EDGES, device=self._device)

    def _check_finite(self, g: StepGrads) -> None:
        per_param = g.nonfinite
        if not bool((per_param > 0).any()):  # one host read per step, only with on_nonfinite="raise"/"warn"
            return
        counts = np.zeros(len(self.layers))
        np.add.at(counts, [self._owner[i] for i in g.present], per_param.cpu().numpy())
        backward_first = self.layers[int(np.flatnonzero(counts)[-1])].name
        message = (
            f"non-finite gradient at step {self._step}: {int(counts.sum())} elements in "
            f"{int((counts > 0).sum())} of {len(self.layers)} layers; first in backward order: "
            f"{backward_first}"
        )
        emitted = self._probes.peek_nonfinite_layer() if self._probes.attached else None
        if emitted is not None:
            message += f"; the first layer whose output was non-finite (forward order): {self.layers[emitted].name}"
        layer = self.layers[emitted].name if emitted is not None else backward_first
        if self.on_nonfinite == "raise":
            self._end_row()  # the raising step stays in the history, so diagnose() reports it
            if not self._queue.sharded:  # a flush under FSDP is a collective that the other ranks may not join
                self.flush()
            raise NonFiniteGradientError(message, self._step - 1, layer)
        if not self._warned:
            warnings.warn(message, RuntimeWarning, stacklevel=5)
            self._warned = True

    # ---- what patches.py shows of the loop -------------------------------------------------------------------
    def _watches_optimizer(self, optimizer: Any) -> bool:
        return any(o is optimizer for o in self.optimizers)

    def _before_clip(self, param_ids: set[int]) -> None:
        """``clip_grad_norm_`` is about to clip: the end-of-backward measurement is the pre-clip one; without
        one (a backward the watch did not see), measure now."""
        if self._preclip and not self._closed and any(id(p) in param_ids for p in self._params):
            if self._preclips is None or not self._preclips.mark_clipped():
                self.record_preclip()

    def _after_unscale(self) -> None:
        """``GradScaler.unscale_`` divided the gradients by the scale: measure the unscaled ones."""
        if self._preclips is not None and self._preclips.measured is not None:
            self._backward_end()

    def _skipped_step(self, optimizer: Any) -> None:
        """GradScaler skipped ``optimizer``'s step: record the gradients it would have stepped on."""
        k = next(i for i, o in enumerate(self.optimizers) if o is optimizer)
        if self._recording():
            self._history.meta["skipped_steps"].append(self._step)
        self._before_step(k)
        self._before.pop(k, None)
        self._optimizer_steps -= 1  # _after_step counts optimizer steps; this one was not taken
        self._after_step(k)

    # ---- public ----------------------------------------------------------------------------------------------
    def record_preclip(self) -> None:
        """Record the per-layer gradient norm now as ``grad_norm_preclip`` of the coming step. Not needed for
        clipping in place (any function): the watch sees it; call it before a clipping that it cannot see (one
        through ``p.grad.data``)."""
        if self._closed or not self._preclip or not self._recording() or not self._guard.active(GRADS):
            return
        with self._guard(GRADS, "pre-clip", step=self._step):
            self._measure_grads(None, ["grad_l2"], rename="preclip_l2")

    def step(self, at: int | None = None, *, before_clip: bool = False) -> None:
        """Record the statistics of the gradients now in ``p.grad``: call it after ``backward()`` when the watch
        has no optimizer (with one, its step hooks do this). ``before_clip=True``: the loop clips these gradients
        after this call; they are recorded as ``grad_norm_preclip`` too.

        ``at``: the number of this step, from a trainer's own counter (steps only go forward). The step then stays
        open: calling ``step(at=n)`` again with the same ``n`` (several optimizers stepping one after another in
        one trainer step) adds the gradients present now to it, the later value of a parameter replacing the
        earlier one; it is complete at the first call with a larger ``n``, or at ``close()``."""
        if self._closed:
            raise RuntimeError("this watch is closed; create a new one with gradwatch.watch(model)")
        if self.optimizers:
            raise RuntimeError("this watch follows its optimizer's steps; do not call w.step() as well")
        if at is not None:
            if isinstance(at, bool) or not isinstance(at, int) or at < self._step:
                raise ConfigError(
                    "at", at, f"expected an integer ≥ {self._step} (the steps of a watch only go forward)"
                )
            if self._stepped and at != self._step:  # a new step begins: the open one is complete
                self._end_row()
            if at != self._step:
                self._step = at
                self._arm()
        self._before_clip_now = bool(before_clip)
        try:
            self._before_step(None)
        finally:
            self._before_clip_now = False
        if at is None:
            self._end_row()
            return
        self._stepped.add(-1)  # open until a larger step or close()
        hists = self._pending_hists
        if len(hists) > 1 and hists[-2][0] == hists[-1][0]:  # this step's histogram again: keep the latest
            del hists[-2]

    def flush(self) -> None:
        """Copy the queued statistics to the host (one copy for all steps, layers and statistics; under FSDP2 one
        collective as well, so call it on every rank) and hand the new rows to the sinks and the run store."""
        steps = values = None
        if len(self._queue):
            with self._guard(GRADS, "flush"):
                steps, values = self._queue.take()
                self._history.append(steps, values)
        hists = [(step, counts.cpu().numpy()) for step, counts in self._pending_hists]
        for step, counts in hists:
            self._history.append_histogram(step, counts)
        self._pending_hists = []
        meta = self._history.meta
        self._silent.write(meta)
        meta["disabled"] = self._guard.summary()
        facts = self._graph.facts
        if facts is not None:
            meta.update(
                depth=list(facts.depth),
                residual=facts.residual,
                graph_nodes=facts.nodes,
                loss_of=list(facts.loss_of),
                depth_from="loss" if self._graph.from_loss else "output",
            )
        meta["optimizer_of"] = self._optimizer_of()
        self._outputs.write(self._history, steps, values, hists)  # to the sinks and the run store

    def _unhook(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._silent.close()  # before patches: its clip wrappers sit on top of theirs
        patches.unregister(self)
        if self._preclips is not None:
            self._preclips.reset()
            self._preclips.measuring = False
        self._graph.remove()
        self._probes.detach()
        if self._locator is not None:
            self._locator.detach()

    def close(self) -> None:
        """Remove every hook from the model and optimizers and copy what is queued to the history. Idempotent."""
        if self._closed:
            return
        self._unhook()
        if self._stepped:  # a step that not every optimizer took
            self._end_row()
        self._closed = True
        self.flush()
        self._outputs.close(self.diagnose)  # the diagnosis to the sinks and the run store; closes them
        self._history.meta["disabled"] = self._guard.summary()  # with any sink that failed at the end
        self._before, self._theta = {}, {}  # free the copies of θ

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def history(self) -> History:
        """The record so far (reading it first copies what is queued to the host; under FSDP2 read it on every
        rank, or after ``close()``)."""
        self.flush()
        return self._history

    def diagnose(self, **thresholds: Any):
        """Findings from the history: see :func:`gradwatch.diagnose.diagnose` for the thresholds. A convenience:
        the diagnosis is the facade's (:func:`gradwatch.watching.diagnosis_of`), the probe only records."""
        from gradwatch.watching import diagnosis_of

        return diagnosis_of(self, **thresholds)

    def report(self, console=None, *, html: Any = None, **thresholds: Any) -> Any:
        """Print the per-layer table and the diagnosis (rich) to ``console`` (stdout by default); with
        ``html=PATH``, write the self-contained report page there instead and return its path. A convenience:
        the report is the facade's (:func:`gradwatch.watching.report_of`)."""
        from gradwatch.watching import report_of

        return report_of(self, console, html=html, **thresholds)

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


class _NoOutlet:
    """The outlet of a watch made without one (``gradwatch.probe.watch``): it records into its history only."""

    run_id = None

    def __init__(self, watcher: Watcher):
        for param in ("sinks", "store", "config"):
            value = getattr(watcher, param)
            if value is not None and value != () and value != []:
                raise ConfigError(
                    param,
                    value,
                    "is for the watch with its outlet: use gradwatch.watch(...) "
                    "(gradwatch.watching.watch), not gradwatch.probe.watch",
                )

    def write(self, *args: Any, **kwargs: Any) -> None:
        """Nothing leaves a watch without an outlet."""

    def close(self, diagnose: Any) -> None:
        """Nothing leaves a watch without an outlet."""


def watch(model: nn.Module, optimizer: Any = None, every: int = 1, **options: Any) -> Watcher:
    """A watch that records into its history only: :func:`gradwatch.watch` (``gradwatch.watching.watch``) with
    its options, less ``sinks``, ``store`` and ``config``, which need the outlet."""
    return Watcher(model, optimizer, every, **options)

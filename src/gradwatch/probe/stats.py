"""The statistics the watch records: one small class per statistic, each with one method, and what each declares
(:class:`Declared`: what it measures, where it attaches, what it costs, whether it is on by default), gathered in
:data:`CATALOGUE`.

Three families, by where their input comes from:

* :class:`Stat` — from ``p.grad`` after backward (the accumulated, unscaled, all-reduced gradient the optimizer
  steps on), from the parameters (``weight_norm``) or from the step just taken (``update_ratio``). All layers at
  once: the per-parameter reductions are fused (``torch._foreach_norm``) and shared through :class:`StepGrads`,
  summed per layer into raw accumulators (:data:`RAW_REDUCE`) with one ``index_add_``, and finished at flush time
  (so a sharded model's partial sums combine first). The cheap ones (``every_step``) are taken on every recorded
  step, the others on sampled steps.
* :class:`ForwardStat` / :class:`BackwardStat` — from module hooks on sampled steps: the layer's output (or the
  input/output of the activation that follows it) and the gradients w.r.t. a module's input and output. One
  0-d tensor per layer per call.

Nothing here calls ``.item()``; the watcher stacks the results and copies them to the host every few steps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from gradwatch.probe.gates import gate_saturation
from gradwatch.probe.histogram import HIST_EDGES, HIST_SAMPLE, log10_histogram  # noqa: F401 - re-exported
from gradwatch.probe.layers import FollowingActivation, Layer
from gradwatch.probe.reads import free_reads
from gradwatch.probe.units import DOC as GRAD_DEAD_DOC
from gradwatch.stat_names import (
    ACT_DEAD,
    ACT_MEAN,
    ACT_NONFINITE,
    ACT_SATURATION,
    ACT_STD,
    BACKWARD_GAIN,
    GAIN_ACTIVATION,
    GRAD_ABS_MAX,
    GRAD_ABS_MEAN,
    GRAD_DEAD,
    GRAD_HIST,
    GRAD_NORM,
    GRAD_NORM_PRECLIP,
    NONFINITE,
    STAT_NAMES,
    UPDATE_RATIO,
    WEIGHT_NONFINITE,
    WEIGHT_NORM,
    StatName,
)

SATURATION_LEVEL = 0.01  # act_saturation counts σ'(z) < SATURATION_LEVEL · max σ'
_NAN = float("nan")


def count_nonfinite(t: Tensor) -> Tensor:
    """The number of inf/NaN elements of ``t`` (a 0-d integer tensor): x·0 is 0 for a finite x and NaN otherwise,
    and counting the non-zeros of that is several times faster on the CPU than ``(~torch.isfinite(t)).sum()``."""
    return torch.count_nonzero(t * 0)


def local(t: Tensor) -> Tensor:
    """The part of ``t`` this process holds: the local shard of a DTensor (FSDP2), ``t`` itself otherwise; the
    stored values of a sparse tensor (see :func:`stored`)."""
    to_local = getattr(t, "to_local", None)
    return stored(to_local() if to_local is not None else t)


def stored(t: Tensor) -> Tensor:
    """The values a tensor stores: ``t`` itself when strided; for a sparse gradient (``nn.Embedding(sparse=True)``)
    the values of its coalesced form (duplicate indices summed), whose norms, sums and maxima are the tensor's."""
    if t.layout == torch.strided:
        return t
    if t.layout == torch.sparse_coo:
        return t.coalesce().values()
    return t.values()  # compressed layouts (CSR, CSC, BSR, BSC)


# What is measured per parameter on a step (a vector ``[parameters]`` each, from one fused reduction), and the
# per-layer accumulator each becomes at flush time: a sum of squares, a sum or a maximum over the layer's
# parameters. The accumulators are partial over a shard, so the shards of an FSDP2 model combine with one
# collective per flush before the statistics are finished from them (see ``Stat.finish``).
PER_PARAM: dict[str, tuple[str, str]] = {
    "grad_l2": ("grad_sq", "sumsq"),  # ‖g‖₂ per parameter → Σ g² per layer
    "grad_l1": ("grad_abs", "sum"),  # Σ |g|
    "grad_linf": ("grad_max", "max"),  # max |g|
    "grad_bad": ("grad_bad", "sum"),  # number of non-finite elements of g
    "preclip_l2": ("preclip_sq", "sumsq"),  # ‖g‖₂ before clip_grad_norm_
    "weight_l2": ("weight_sq", "sumsq"),  # ‖θ‖₂
    "before_l2": ("before_sq", "sumsq"),  # ‖θ‖₂ before the optimizer step
    "delta_l2": ("delta_sq", "sumsq"),  # ‖Δθ‖₂ of the optimizer step
    "weight_bad": ("weight_bad", "sum"),  # number of non-finite elements of θ
}
COUNT = "grad_count"  # per layer: the number of gradient elements measured (from the parameters present)
LAYER_REDUCE: dict[str, str] = {
    **{acc: ("max" if how == "max" else "sum") for acc, how in PER_PARAM.values()},
    COUNT: "sum",
}
RAW = tuple(PER_PARAM)


def fused_norms(tensors: list[Tensor], ord: float = 2) -> Tensor:
    """``[len(tensors)]`` float32: each tensor's ``ord``-norm, in one fused call (no conversion when already
    float32: on the CPU every extra operation in a training step counts)."""
    norms = torch.stack(torch._foreach_norm(tensors, ord))
    return norms if norms.dtype == torch.float32 else norms.float()


class StepGrads:
    """The gradients of one measurement, with fused per-parameter reductions computed at most once. ``grads`` are
    local tensors (a DTensor's shard). Every result is a vector ``[len(grads)]``."""

    any_nonfinite: bool | None = None  # known without a device sync (free_reads) once ``nonfinite`` was computed

    def __init__(self, grads: list[Tensor], free: bool | None = None, device: torch.device | None = None):
        self.grads = grads
        self.present: list[int] = []  # the watcher's indices of the parameters these gradients belong to
        self.cached: Any = None  # the watcher's index tensors for them
        self._free = free  # whether reading a flag on the host costs no device sync (None: asked of the device)
        self._device = device  # where the gradients are (None: asked of them)

    @cached_property
    def l2(self) -> Tensor:  # [params]
        return fused_norms(self.grads)

    @property
    def _fused(self) -> bool:
        """Fused multi-tensor kernels pay off on accelerators; on the CPU, where ``_foreach_norm`` with ord 1 or ∞
        takes the slow generic path, a loop of vectorised per-tensor reductions is 3–10× faster (measured)."""
        return self.grads[0].device.type != "cpu"

    @cached_property
    def _abs_sum_max(self) -> tuple[Tensor, Tensor]:
        """(Σ|g|, max|g|) per parameter (both NaN where g holds a NaN; an empty shard gives 0, 0)."""
        if self._fused:
            return (
                fused_norms(self.grads, 1),
                fused_norms(self.grads, math.inf),
            )
        sums, maxima = [], []
        for g in self.grads:  # one |g| at a time: the allocator reuses its block (41 alive at once cost 3× more)
            a = g.abs()
            sums.append(a.sum())
            maxima.append(a.amax() if a.numel() else a.new_zeros(()))
        return torch.stack(sums).float(), torch.stack(maxima).float()

    @cached_property
    def nonfinite(self) -> Tensor:  # [params]
        """Count of non-finite elements per parameter. A finite L2 norm proves there are none: on the CPU
        (where reading a flag costs no device sync) only parameters whose norm is not finite are counted."""
        device = self.l2.device if self._device is None else self._device
        free = free_reads(device) if self._free is None else self._free
        if free and math.isfinite(sum(self.l2.tolist())):  # a free read, no tensor operation (the common case)
            self.any_nonfinite = False
            return zeros(len(self.grads), device)
        bad = ~torch.isfinite(self.l2)
        if free:
            self.any_nonfinite = bool(bad.any())
            if not self.any_nonfinite:  # finite norms whose sum overflowed
                return zeros(len(self.grads), device)
        idx = bad.nonzero().flatten().tolist() if free else range(len(self.grads))
        counts = torch.zeros_like(self.l2)
        for i in idx:
            counts[i] = count_nonfinite(self.grads[i])
        return counts

    def raw(self, name: str) -> Tensor:
        """The per-parameter measurement ``name`` (a key of :data:`PER_PARAM` starting with ``grad_``)."""
        if name == "grad_l2":
            return self.l2
        if name == "grad_l1":
            return self._abs_sum_max[0]
        if name == "grad_linf":
            return self._abs_sum_max[1]
        if name == "grad_bad":
            return self.nonfinite
        raise KeyError(name)


@functools.lru_cache(maxsize=64)  # bounded: a handful of (size, device) pairs per watch
def zeros(n: int, device: torch.device) -> Tensor:
    """A float32 vector of ``n`` zeros on ``device``, shared (never written to)."""
    return torch.zeros(n, device=device)


# Where a statistic is taken: its input and the hook that reads it.
Where = Literal[
    "optimizer step pre-hook, on p.grad",  # the gradient the optimizer steps on (after any clipping)
    "optimizer step pre-hook, on the parameters",
    "optimizer step pre- and post-hook, on the parameters",  # θ before the step, then Δθ
    "end of backward, on p.grad",  # when torch.autograd.backward returns
    "module forward hook",
    "tensor hooks in backward",  # on a module's input and output
]


@dataclass(frozen=True)
class Declared:
    """What a statistic says of itself, the one place :func:`describe`, the catalogue and the docs read: ``doc``,
    what it measures; ``where``, the hook that takes it; ``cost``, what that adds to a step, in one honest sentence;
    ``default``, whether ``stats="default"`` records it (only what is cheap enough for every run)."""

    name: StatName
    doc: str
    where: Where
    cost: str
    default: bool = False


class Declares:
    """A statistic class's ``about`` (its :class:`Declared`), and its ``name`` and ``doc`` read from there."""

    about: ClassVar[Declared]

    @property
    def name(self) -> StatName:
        return self.about.name

    @property
    def doc(self) -> str:
        return self.about.doc


class Stat(Declares):
    """A statistic finished from raw per-layer accumulators (after any cross-shard reduction), at flush time.

    ``needs``: the accumulators it reads; ``every_step``: measured on every recorded step (cheap: one fused norm
    for all layers) or only on sampled steps (``sample_every``)."""

    needs: tuple[str, ...] = ()
    every_step = False

    def finish(self, raw: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError


class GradNorm(Stat):
    about = Declared(
        GRAD_NORM,
        "L2 norm of all the layer's parameter gradients, ‖∂L/∂θ_layer‖₂ (what the optimizer steps on)",
        "optimizer step pre-hook, on p.grad",
        "one fused norm over all gradients per recorded step, taken at the end of backward and reused at the step "
        "when the loop did not change the gradients",
        default=True,
    )
    needs, every_step = ("grad_sq",), True

    def finish(self, raw):
        return raw["grad_sq"].sqrt()


class NonFinite(Stat):
    about = Declared(
        NONFINITE,
        "number of non-finite (inf or NaN) gradient elements in the layer",
        "optimizer step pre-hook, on p.grad",
        "per recorded step: on the CPU a host read of grad_norm's norms, nothing more while they are finite; on an "
        "accelerator a count of non-finite elements per parameter (no host sync)",
        default=True,
    )
    needs, every_step = ("grad_bad",), True

    def finish(self, raw):
        return raw["grad_bad"]


class GradNormPreclip(Stat):
    about = Declared(
        GRAD_NORM_PRECLIP,
        "‖∂L/∂θ_layer‖₂ at the end of backward, before the loop clipped it (any in-place clip, or "
        "Watcher.record_preclip()); NaN on steps whose gradients the loop did not change",
        "end of backward, on p.grad",
        "one fused norm over all gradients per backward pass, kept on the device; on a step whose gradients the "
        "loop did not change it is grad_norm's, which then costs nothing more",
        default=True,
    )
    needs, every_step = ("preclip_sq",), True

    def finish(self, raw):
        return raw["preclip_sq"].sqrt()


class GradAbsMean(Stat):
    about = Declared(
        GRAD_ABS_MEAN,
        "mean |∂L/∂θ| over the layer's parameter elements (the paralysis table of Polykovskiy, Technosphere lecture 5)",
        "optimizer step pre-hook, on p.grad",
        "an L1 and a max reduction of every gradient on sampled steps (shared with grad_abs_max)",
        default=True,
    )
    needs = ("grad_abs", "grad_count")

    def finish(self, raw):
        return raw["grad_abs"] / raw["grad_count"]


class GradAbsMax(Stat):
    about = Declared(
        GRAD_ABS_MAX,
        "max |∂L/∂θ| over the layer's parameter elements",
        "optimizer step pre-hook, on p.grad",
        "an L1 and a max reduction of every gradient on sampled steps (shared with grad_abs_mean)",
        default=True,
    )
    needs = ("grad_max",)

    def finish(self, raw):
        return raw["grad_max"]


class WeightNorm(Stat):
    about = Declared(
        WEIGHT_NORM,
        "L2 norm of the layer's parameters, ‖θ_layer‖₂",
        "optimizer step pre-hook, on the parameters",
        "one fused norm over all parameters on sampled steps and on steps whose gradient is non-finite",
        default=True,
    )
    needs = ("weight_sq",)

    def finish(self, raw):
        return raw["weight_sq"].sqrt()


class WeightNonFinite(Stat):
    about = Declared(
        WEIGHT_NONFINITE,
        "number of non-finite (inf or NaN) elements in the layer's weights, counted on sampled steps and on "
        "steps whose gradient is non-finite (a weight that holds the inf/NaN is its origin)",
        "optimizer step pre-hook, on the parameters",
        "on those steps: on the CPU nothing while weight_norm's norms are finite; on an accelerator a count of "
        "non-finite elements per parameter (no host sync)",
        default=True,
    )
    needs = ("weight_bad",)

    def finish(self, raw):
        return raw["weight_bad"]


class UpdateRatio(Stat):
    about = Declared(
        UPDATE_RATIO,
        "‖Δθ‖/‖θ‖ of the optimizer step just taken (θ before the step); needs an optimizer",
        "optimizer step pre- and post-hook, on the parameters",
        "copies θ before the step on sampled steps (memory: one copy of the stepped parameters, freed after the "
        "step), then a fused subtraction and norm",
        default=True,
    )
    needs = ("delta_sq", "before_sq")

    def finish(self, raw):
        return raw["delta_sq"].sqrt() / raw["before_sq"].sqrt()


class ForwardStat(Declares):
    """A statistic of a layer's activations on one forward call; ``compute`` returns a 0-d tensor.

    ``a`` is the output of the activation that follows the layer (the layer's own output if none does), ``z`` the
    activation's input (None without an activation). A statistic with ``reads_input`` reads only ``z``: the hooks
    compute it before the activation runs, so an in-place activation (``ReLU(inplace=True)``) has not yet
    overwritten it.
    """

    reads_input = False

    def compute(self, a: Tensor, z: Tensor | None, layer: Layer) -> Tensor:
        raise NotImplementedError


class ActMean(ForwardStat):
    about = Declared(
        ACT_MEAN,
        "mean of the layer's activations over the batch and units",
        "module forward hook",
        "one reduction per layer per forward call on sampled steps",
    )

    def compute(self, a, z, layer):
        return a.float().mean()


class ActStd(ForwardStat):
    about = Declared(
        ACT_STD,
        "standard deviation of the layer's activations over the batch and units",
        "module forward hook",
        "one reduction per layer per forward call on sampled steps",
    )

    def compute(self, a, z, layer):
        return a.float().std(correction=0) if a.numel() > 0 else a.new_tensor(_NAN)


class ActSaturation(ForwardStat):
    about = Declared(
        ACT_SATURATION,
        "fraction of the following activation's inputs z (examples × units) where it is saturated: σ'(z) < "
        f"{SATURATION_LEVEL:g} · max σ' on a flat tail (sigmoid, tanh, softsign, hardtanh, hardsigmoid; ELU/SELU "
        "below 0; ReLU6 above 6); 0 for activations without one (ReLU's zero half, GELU's and SiLU's negative "
        "tails are inactive, not saturated); for LSTM/GRU/RNN layers the fraction of their gate values "
        "(sigmoid gates and tanh candidates, every step) that are saturated; NaN when no known activation "
        "follows the layer",
        "module forward hook",
        "an elementwise test of the activation's input and a mean per layer per forward call on sampled steps "
        "(recurrent layers: of every gate value, recomputed from the call's inputs)",
    )
    reads_input = True

    def compute(self, a, z, layer):
        act: FollowingActivation | None = layer.activation
        if act is None or z is None:
            return a.new_tensor(_NAN, dtype=torch.float32)
        return act.saturated_fraction(z, SATURATION_LEVEL)

    def compute_gates(self, module, inputs, output) -> Tensor:
        """A recurrent layer's value, from one forward call (:func:`gradwatch.probe.gates.gate_saturation`)."""
        return gate_saturation(module, inputs, output, SATURATION_LEVEL)


MIN_DEAD_SAMPLES = 16  # a unit zero on fewer examples than this (an expert given 3 tokens) is not judged


class ActDead(ForwardStat):
    about = Declared(
        ACT_DEAD,
        "fraction of the layer's units (channels for conv) that are zero for the whole batch (NaN when a unit "
        f"saw fewer than {MIN_DEAD_SAMPLES} values on the step)",
        "module forward hook",
        "a zero test of the output and a reduction per unit per layer per forward call on sampled steps",
    )

    def compute(self, a, z, layer):
        dim = layer.unit_dim % a.dim() if a.dim() > 1 else 0
        units = a.shape[dim] if a.dim() else 0
        if not units or a.numel() // units < MIN_DEAD_SAMPLES:
            return a.new_tensor(_NAN, dtype=torch.float32)
        others = tuple(d for d in range(a.dim()) if d != dim)
        return (a.abs().amax(dim=others) == 0).float().mean()  # a unit's largest |a| is 0 (NaN is not): dead


class ActNonFinite(ForwardStat):
    about = Declared(
        ACT_NONFINITE,
        "number of non-finite elements in the layer's output (locates where inf/NaN start)",
        "module forward hook",
        "a count of non-finite elements per layer per forward call on sampled steps",
    )

    def compute(self, a, z, layer):
        return count_nonfinite(a).float()


class BackwardStat(Declares):
    """The ratio ‖∂L/∂input‖ / ‖∂L/∂output‖ of a module on one backward call (a 0-d tensor). The two gradients
    arrive at different moments of the backward pass (tensor hooks, see :mod:`gradwatch.probe.hooks`): ``norm`` is
    taken of each as it comes (only the output's 0-d norm is kept meanwhile), then ``gain`` divides."""

    @staticmethod
    def norm(grad: Tensor) -> Tensor:
        return torch.linalg.vector_norm(grad.detach().float())

    @staticmethod
    def gain(norm_in: Tensor, norm_out: Tensor) -> Tensor:
        return norm_in / norm_out


class BackwardGain(BackwardStat):
    about = Declared(
        BACKWARD_GAIN,
        "‖∂L/∂input‖/‖∂L/∂output‖ of the layer module: the part of the gradient it passes back that is due to "
        "its weights (NaN for a layer whose input needs no gradient, e.g. the first)",
        "tensor hooks in backward",
        "two gradient norms per layer per backward call on sampled steps",
    )


class GainActivation(BackwardStat):
    about = Declared(
        GAIN_ACTIVATION,
        "‖∂L/∂z‖/‖∂L/∂σ(z)‖ of the activation that follows the layer: the activation-derivative part of the "
        "gradient it passes back (Nielsen, ch. 5: the σ'(z) factors)",
        "tensor hooks in backward",
        "two gradient norms per activation per backward call on sampled steps",
    )


STATS: dict[str, Stat] = {
    s.name: s
    for s in (
        GradNorm(),
        GradAbsMean(),
        GradAbsMax(),
        NonFinite(),
        WeightNorm(),
        UpdateRatio(),
        GradNormPreclip(),
        WeightNonFinite(),
    )
}
FORWARD_STATS: dict[str, ForwardStat] = {
    s.name: s for s in (ActMean(), ActStd(), ActSaturation(), ActDead(), ActNonFinite())
}
BACKWARD_STATS: dict[str, BackwardStat] = {s.name: s for s in (BackwardGain(), GainActivation())}
HISTOGRAM = GRAD_HIST

# the two statistics without a class here: the watcher takes them itself
HISTOGRAM_DECLARED = Declared(
    GRAD_HIST,
    "per-layer histogram of log10|∂L/∂θ| in fixed 0.25-decade bins from 1e-38 to 1e4, with exact zeros, "
    "underflow, overflow and NaN counted apart (Glorot & Bengio 2010 pictures)",
    "optimizer step pre-hook, on p.grad",
    f"one bincount for all layers on sampled steps; a layer of more than {2 * HIST_SAMPLE:,} gradient elements "
    f"is binned on a fixed sample of about {HIST_SAMPLE:,}",
)
GRAD_DEAD_DECLARED = Declared(
    GRAD_DEAD,
    GRAD_DEAD_DOC,
    "optimizer step pre-hook, on p.grad",
    "per recorded step: on the CPU one zero test over all bias gradients, then a sum of |g| over the rows of the "
    "units with a zero bias entry (every row of a layer where they are many, or without a bias); nothing more on a "
    "healthy step; on an accelerator a sum of |g| per unit row of every weight gradient (no host read)",
)

# every statistic's declaration, by name, in the order the watch records them
CATALOGUE: dict[str, Declared] = {
    d.name: d
    for d in sorted(
        (
            *(s.about for s in STATS.values()),
            *(s.about for s in FORWARD_STATS.values()),
            *(s.about for s in BACKWARD_STATS.values()),
            HISTOGRAM_DECLARED,
            GRAD_DEAD_DECLARED,
        ),
        key=lambda d: STAT_NAMES.index(d.name),
    )
}
DEFAULT_STATS = tuple(n for n, d in CATALOGUE.items() if d.default)
SAMPLED_STATS = tuple(n for n, d in CATALOGUE.items() if not d.default)
ALL_STATS = (*DEFAULT_STATS, *SAMPLED_STATS)


def describe(name: str) -> str:
    """The one-line documentation of a statistic (KeyError for an unknown name)."""
    return CATALOGUE[name].doc

"""The statistics the watch records: one small class per statistic, each with one ``compute`` method.

Three families, by where their input comes from:

* :class:`GradStat` — from ``p.grad`` after backward (the accumulated, all-reduced gradient the optimizer steps
  on). All layers at once: the per-parameter reductions are fused (``torch._foreach_norm``) and shared through
  :class:`StepGrads`, then summed per layer with one ``index_add_``. Result: a tensor ``[layers]`` on the device.
* :class:`ParamStat` — from the parameters themselves (``weight_norm``) or the step just taken
  (``update_ratio``).
* :class:`ForwardStat` / :class:`BackwardStat` — from module hooks on sampled steps: the layer's output (or the
  input/output of the activation that follows it) and the gradients w.r.t. a module's input and output. One
  0-d tensor per layer per call.

Nothing here calls ``.item()``; the watcher stacks the results and copies them to the host every few steps.
"""

from __future__ import annotations

import functools
import math
from functools import cached_property

import torch
from torch import Tensor

from gradwatch.probe.gates import gate_saturation
from gradwatch.probe.history import HIST_SPECIAL
from gradwatch.probe.layers import FollowingActivation, Layer

SATURATION_LEVEL = 0.01  # act_saturation counts σ'(z) < SATURATION_LEVEL · max σ'
# log10|g| bin edges, 0.25 decade wide, from 1e-38 (below float32's smallest normal 1.18e-38, log10 −37.93: a
# vanishing layer's gradients are resolved down to where float32 underflows) to 1e4; what falls outside is counted
# in the extra columns HIST_SPECIAL (exact zeros, underflow — e.g. float64 or subnormal values below 1e-38 —,
# overflow including ±inf, NaN)
HIST_EDGES = torch.linspace(-38.0, 4.0, 169)
_NAN = float("nan")


class StepGrads:
    """The gradients of one step grouped by layer, with fused per-parameter reductions computed at most once."""

    def __init__(self, grads: list[Tensor], owner: Tensor, layer_numel: Tensor, n_layers: int):
        self.grads, self.owner, self.layer_numel, self.n_layers = grads, owner, layer_numel, n_layers

    def per_layer_sum(self, values: Tensor) -> Tensor:  # [params] -> [layers]
        return values.new_zeros(self.n_layers).index_add_(0, self.owner, values)

    def per_layer_max(self, values: Tensor) -> Tensor:  # [params] -> [layers]
        return values.new_zeros(self.n_layers).scatter_reduce_(0, self.owner, values, "amax")

    @cached_property
    def l2(self) -> Tensor:  # [params]
        return torch.stack(torch._foreach_norm(self.grads, 2))

    @property
    def _fused(self) -> bool:
        """Fused multi-tensor kernels pay off on accelerators; on the CPU, where ``_foreach_norm`` with ord 1 or ∞
        takes the slow generic path, a loop of vectorised per-tensor reductions is 3–10× faster (measured)."""
        return self.grads[0].device.type != "cpu"

    @cached_property
    def l1(self) -> Tensor:  # [params]
        if self._fused:
            return torch.stack(torch._foreach_norm(self.grads, 1))
        return self._abs_sum_max[0]

    @cached_property
    def linf(self) -> Tensor:  # [params]
        if self._fused:
            return torch.stack(torch._foreach_norm(self.grads, math.inf))
        return self._abs_sum_max[1]

    @cached_property
    def _abs_sum_max(self) -> tuple[Tensor, Tensor]:
        """(Σ|g|, max|g|) per parameter on the CPU from one |g| per tensor (both NaN where g holds a NaN): for the
        41 tensors of the 20 × 256 MLP of benchmarks/overhead.py 0.72 ms against 1.0 ms for Σ|g| and aminmax
        separately (timed alone; end to end the difference is within the benchmark's noise)."""
        sums, maxima = [], []
        for g in self.grads:  # one |g| at a time: the allocator reuses its block (41 alive at once cost 3× more)
            a = g.abs()
            sums.append(a.sum())
            maxima.append(a.amax())
        return torch.stack(sums), torch.stack(maxima)

    @cached_property
    def nonfinite(self) -> Tensor:  # [params]
        """Count of non-finite elements per parameter. A finite L2 norm proves there are none: on the CPU
        (where reading a flag costs no device sync) only parameters whose norm is not finite are counted."""
        bad = ~torch.isfinite(self.l2)
        if self.l2.device.type == "cpu" and not bool(bad.any()):
            return torch.zeros_like(self.l2)
        idx = bad.nonzero().flatten().tolist() if self.l2.device.type == "cpu" else range(len(self.grads))
        counts = torch.zeros_like(self.l2)
        for i in idx:
            counts[i] = (~torch.isfinite(self.grads[i])).sum()
        return counts


class GradStat:
    """A statistic of the layer's parameter gradients; ``compute`` returns a tensor ``[layers]``."""

    name = ""
    doc = ""

    def compute(self, g: StepGrads) -> Tensor:
        raise NotImplementedError


class GradNorm(GradStat):
    name, doc = "grad_norm", "L2 norm of all the layer's parameter gradients, ‖∂L/∂θ_layer‖₂"

    def compute(self, g: StepGrads) -> Tensor:
        return g.per_layer_sum(g.l2.square()).sqrt()


class GradAbsMean(GradStat):
    name, doc = "grad_abs_mean", "mean |∂L/∂θ| over the layer's parameter elements (seed 001's table)"

    def compute(self, g: StepGrads) -> Tensor:
        return g.per_layer_sum(g.l1) / g.layer_numel


class GradAbsMax(GradStat):
    name, doc = "grad_abs_max", "max |∂L/∂θ| over the layer's parameter elements"

    def compute(self, g: StepGrads) -> Tensor:
        return g.per_layer_max(g.linf)


class NonFinite(GradStat):
    name, doc = "nonfinite", "number of non-finite (inf or NaN) gradient elements in the layer"

    def compute(self, g: StepGrads) -> Tensor:
        return g.per_layer_sum(g.nonfinite)


class ParamStat:
    """A statistic of the parameters (``weight_norm``) or of the step just taken (``update_ratio``)."""

    name = ""
    doc = ""


class WeightNorm(ParamStat):
    name, doc = "weight_norm", "L2 norm of the layer's parameters, ‖θ_layer‖₂"

    def compute(self, weight_sq: Tensor) -> Tensor:  # per-layer Σθ² -> [layers]
        return weight_sq.sqrt()


class UpdateRatio(ParamStat):
    name, doc = "update_ratio", "‖Δθ‖/‖θ‖ of the optimizer step just taken (θ before the step); needs an optimizer"

    def compute(self, delta_sq: Tensor, before_sq: Tensor) -> Tensor:  # per-layer Σ(Δθ)², Σθ² -> [layers]
        return delta_sq.sqrt() / before_sq.sqrt()


class ForwardStat:
    """A statistic of a layer's activations on one forward call; ``compute`` returns a 0-d tensor.

    ``a`` is the output of the activation that follows the layer (the layer's own output if none does), ``z`` the
    activation's input (None without an activation). A statistic with ``reads_input`` reads only ``z``: the hooks
    compute it before the activation runs, so an in-place activation (``ReLU(inplace=True)``) has not yet
    overwritten it.
    """

    name = ""
    doc = ""
    reads_input = False

    def compute(self, a: Tensor, z: Tensor | None, layer: Layer) -> Tensor:
        raise NotImplementedError


class ActMean(ForwardStat):
    name, doc = "act_mean", "mean of the layer's activations over the batch and units"

    def compute(self, a, z, layer):
        return a.float().mean()


class ActStd(ForwardStat):
    name, doc = "act_std", "standard deviation of the layer's activations over the batch and units"

    def compute(self, a, z, layer):
        return a.float().std(correction=0) if a.numel() > 0 else a.new_tensor(_NAN)


class ActSaturation(ForwardStat):
    name = "act_saturation"
    doc = ("fraction of the following activation's inputs z (examples × units) where it is saturated: σ'(z) < "
           f"{SATURATION_LEVEL:g} · max σ' on a flat tail (sigmoid, tanh, softsign, hardtanh, hardsigmoid; ELU/SELU "
           "below 0; ReLU6 above 6); 0 for activations without one (ReLU's zero half, GELU's and SiLU's negative "
           "tails are inactive, not saturated); for LSTM/GRU/RNN layers the fraction of their gate values "
           "(sigmoid gates and tanh candidates, every step) that are saturated; NaN when no known activation "
           "follows the layer")
    reads_input = True

    def compute(self, a, z, layer):
        act: FollowingActivation | None = layer.activation
        if act is None or z is None:
            return a.new_tensor(_NAN, dtype=torch.float32)
        return act.saturated(z.float(), SATURATION_LEVEL).float().mean()

    def compute_gates(self, module, inputs, output) -> Tensor:
        """A recurrent layer's value, from one forward call (:func:`gradwatch.probe.gates.gate_saturation`)."""
        return gate_saturation(module, inputs, output, SATURATION_LEVEL)


class ActDead(ForwardStat):
    name, doc = "act_dead", "fraction of the layer's units (channels for conv) that are zero for the whole batch"

    def compute(self, a, z, layer):
        dim = layer.unit_dim % a.dim() if a.dim() > 1 else 0
        zero = (a == 0).movedim(dim, 0).reshape(a.shape[dim], -1)  # [units, everything else]
        return zero.all(dim=1).float().mean()


class ActNonFinite(ForwardStat):
    name, doc = "act_nonfinite", "number of non-finite elements in the layer's output (locates where inf/NaN start)"

    def compute(self, a, z, layer):
        return (~torch.isfinite(a)).sum().float()


class BackwardStat:
    """The ratio ‖∂L/∂input‖ / ‖∂L/∂output‖ of a module on one backward call (a 0-d tensor). The two gradients
    arrive at different moments of the backward pass (tensor hooks, see :mod:`gradwatch.probe.hooks`): ``norm`` is
    taken of each as it comes (only the output's 0-d norm is kept meanwhile), then ``gain`` divides."""

    name = ""
    doc = ""

    @staticmethod
    def norm(grad: Tensor) -> Tensor:
        return torch.linalg.vector_norm(grad.detach().float())

    @staticmethod
    def gain(norm_in: Tensor, norm_out: Tensor) -> Tensor:
        return norm_in / norm_out


class BackwardGain(BackwardStat):
    name = "backward_gain"
    doc = ("‖∂L/∂input‖/‖∂L/∂output‖ of the layer module: the part of the gradient it passes back that is due to "
           "its weights (NaN for a layer whose input needs no gradient, e.g. the first)")


class GainActivation(BackwardStat):
    name = "gain_activation"
    doc = ("‖∂L/∂z‖/‖∂L/∂σ(z)‖ of the activation that follows the layer: the activation-derivative part of the "
           "gradient it passes back (seed 000: the σ'(z) factors)")


HIST_SAMPLE = 1 << 13  # a layer with more gradient elements is histogrammed on a random sample of about this many


@functools.lru_cache(maxsize=512)
def _sample_index(n: int, k: int, device: str) -> Tensor:
    """``k`` fixed random positions in ``range(n)`` (with replacement; the same every step: cached)."""
    g = torch.Generator().manual_seed(n * 1_000_003 + k)
    return torch.randint(0, n, (k,), generator=g).to(device)


def log10_histogram(grads: list[Tensor], edges: Tensor = HIST_EDGES, max_elements: int | None = HIST_SAMPLE) -> Tensor:
    """Counts of log10|g| over the elements of ``grads``: ``[len(edges) - 1 + 4]``, the regular bins ``edges`` (the
    last one closed on the right, as ``numpy.histogram``) then the counts :data:`HIST_SPECIAL`: exact zeros,
    underflow (0 < |g| < 10^edges[0]), overflow (|g| > 10^edges[-1], ±inf included) and NaN. The logarithm is
    taken in float64 for float64 gradients and in float32 otherwise (so 1e-300 is underflow, not zero).

    Cost: when the layer has more than ``max_elements`` elements, the counts come from a fixed random sample of
    about ``max_elements`` of them (each tensor in proportion to its size) scaled to the layer's size: unbiased
    fractions (with 8,192 samples the standard error of a bin holding a fraction p is √(p(1−p)/8192): 0.0024 at
    p = 5 %), at a fixed cost per layer; exact counts of zeros or NaN come from the other statistics (``nonfinite``).
    ``None`` counts every element.
    An empty ``grads`` (a layer without gradients this step) gives zeros."""
    lo, hi, bins = float(edges[0]), float(edges[-1]), len(edges) - 1
    if not grads:
        return torch.zeros(bins + len(HIST_SPECIAL), device=edges.device)
    total = sum(g.numel() for g in grads)
    parts = [g.detach().reshape(-1) for g in grads]
    if max_elements is not None and total > max_elements:
        parts = [p[_sample_index(p.numel(), -(-max_elements * p.numel() // total), str(p.device))]
                 for p in parts if p.numel()]
    flat = torch.cat(parts)  # [elements or sample]
    flat = flat if flat.dtype == torch.float64 else flat.float()
    logs = torch.log10(flat.abs()).float()  # 0 -> -inf, inf -> inf, NaN -> NaN
    # one bincount over a category per element (bins 0…bins-1, then zero, underflow, overflow, NaN): faster on the
    # CPU than torch.histc (which alone took 3.3 ms for 65,536 elements, 1 thread); needs equal-width bins
    width = (hi - lo) / bins
    if not torch.allclose(edges.diff().double().cpu(), torch.full((bins,), width, dtype=torch.float64)):
        raise ValueError("log10_histogram needs equally spaced edges")
    cat = ((logs - lo) / width).floor_().clamp_(0, bins - 1)  # [elements]; the last bin closed on the right
    cat.masked_fill_(logs > hi, bins + 2).masked_fill_(logs < lo, bins + 1)
    cat.masked_fill_(flat == 0, bins).masked_fill_(torch.isnan(flat), bins + 3)
    counts = torch.bincount(cat.to(torch.int32), minlength=bins + len(HIST_SPECIAL)).float()
    return counts if len(flat) == total else counts * (total / len(flat))


GRAD_STATS: dict[str, GradStat] = {s.name: s for s in (GradNorm(), GradAbsMean(), GradAbsMax(), NonFinite())}
PARAM_STATS: dict[str, ParamStat] = {s.name: s for s in (WeightNorm(), UpdateRatio())}
FORWARD_STATS: dict[str, ForwardStat] = {s.name: s for s in (ActMean(), ActStd(), ActSaturation(), ActDead(),
                                                             ActNonFinite())}
BACKWARD_STATS: dict[str, BackwardStat] = {s.name: s for s in (BackwardGain(), GainActivation())}
HISTOGRAM = "grad_hist"

DEFAULT_STATS = (*GRAD_STATS, *PARAM_STATS)
SAMPLED_STATS = (*FORWARD_STATS, *BACKWARD_STATS, HISTOGRAM)
ALL_STATS = (*DEFAULT_STATS, *SAMPLED_STATS)


def describe(name: str) -> str:
    """The one-line documentation of a statistic."""
    for table in (GRAD_STATS, PARAM_STATS, FORWARD_STATS, BACKWARD_STATS):
        if name in table:
            return table[name].doc
    if name == HISTOGRAM:
        return ("per-layer histogram of log10|∂L/∂θ| in fixed 0.25-decade bins from 1e-38 to 1e4, with exact zeros, "
                "underflow, overflow and NaN counted apart (Glorot & Bengio 2010 pictures)")
    raise KeyError(name)

"""Dead units read from the weight gradient itself: ``grad_dead``.

A unit (an output row of a Linear layer, an output channel of a convolution) whose row of ∂L/∂W and bias entry are
exactly zero over the whole batch had ∂L/∂z = 0 for every example: no active path from its output to the loss
(a ReLU that is off everywhere, whatever applies it — a module registered anywhere, one shared module, ``F.relu``).
This needs no module hook, so it is exact for any activation and is taken on every recorded step from ``p.grad``
(one fused max-reduction per layer, on the device; no host read). Layers without a weight matrix (norms, gains,
embeddings, whose rows are lookups, recurrent cells, whose rows are gates) are not measured (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gradwatch.probe.layers import Layer
from gradwatch.probe.reads import free_reads
from gradwatch.stat_names import GRAD_DEAD

NAME = GRAD_DEAD
DOC = (
    "fraction of the layer's units (rows of a Linear weight, output channels of a convolution) whose gradient row "
    "∂L/∂W and bias entry are exactly zero over the batch: units with no active path to the loss, whatever "
    "activation (module, shared module or function) follows; every recorded step with stats='full'"
)
_LOOKUP = (nn.Embedding, nn.EmbeddingBag, nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)


@dataclass(frozen=True)
class _Units:
    col: int  # the layer's column
    weight: int  # index of the weight among the watched parameters
    bias: int | None
    dim: int  # the weight's dimension that indexes the units


def unit_layers(layers: list[Layer], index: dict[int, int]) -> list[_Units]:
    """The layers whose units ``grad_dead`` measures: a module with a ``weight`` of ≥ 2 dimensions (and optionally a
    ``bias`` with one entry per unit), not a lookup table or a recurrent cell."""
    out = []
    for col, layer in enumerate(layers):
        m = layer.module
        w = getattr(m, "weight", None)
        if not layer.hookable or isinstance(m, _LOOKUP) or not isinstance(w, nn.Parameter) or w.dim() < 2:
            continue
        if id(w) not in index:
            continue
        dim = 1 if isinstance(m, nn.modules.conv._ConvTransposeNd) else 0
        b = getattr(m, "bias", None)
        bias = index.get(id(b)) if isinstance(b, nn.Parameter) and b.shape == (w.shape[dim],) else None
        out.append(_Units(col, index[id(w)], bias, dim))
    return out


class DeadRows:
    """Measures ``grad_dead`` of the unit layers whose weights are among a step's measured parameters."""

    def __init__(self, layers: list[Layer], params: list[nn.Parameter]):
        self.params = params
        self.units = unit_layers(layers, {id(p): i for i, p in enumerate(params)})
        self.n_layers = len(layers)
        self._owners: dict[tuple[int, ...], Tensor] = {}  # segment sizes -> the segment of each element (CPU)

    def measure(self, measured: list[int], device: torch.device) -> Tensor | None:
        """``[layers]``: the dead fraction of each unit layer whose weight is in ``measured`` and has a dense
        gradient now, NaN elsewhere; None when there is none.

        A dead unit's bias gradient is exactly zero (∂L/∂b_j sums the unit's ∂L/∂z, all zero), so on the CPU
        (where reading costs no device sync) the bias gradients of all layers are tested first, in one pass, and
        only the layers with a zero bias entry (or without a bias) have their weight rows read: a healthy step
        costs a few operations, not a reduction per layer."""
        wanted = set(measured)
        found: list[tuple[_Units, Tensor, Tensor | None]] = []
        for u in self.units:
            if u.weight not in wanted:
                continue
            g = self.params[u.weight].grad
            if g is None or g.layout != torch.strided:
                continue
            b = self.params[u.bias].grad if u.bias is not None else None
            found.append((u, g.detach(), b.detach() if b is not None and b.layout == torch.strided else None))
        if not found:
            return None
        check = self._candidates(found, device)
        out = torch.full((self.n_layers,), float("nan"), device=device)
        alive = [u.col for (u, _, _), read in zip(found, check) if not read]  # no zero bias entry: no dead unit
        if alive:
            out[torch.tensor(alive, device=device)] = 0.0
        read = [f for f, r in zip(found, check) if r]
        if read:
            out[torch.tensor([u.col for u, _, _ in read], device=device)] = self._fractions(read, device).to(device)
        return out

    def _fractions(self, read: list[tuple[_Units, Tensor, Tensor | None]], device: torch.device) -> Tensor:
        """The dead fraction of each layer of ``read`` ``[len(read)]``: a row sum of |g| per layer, then one test
        and one count for all layers together (a handful of operations per step, not a dozen per layer)."""
        if len({g.device for _, g, _ in read}) > 1:  # a model split over devices: each layer on its own
            return torch.stack([_dead_fraction(u, g, b).to(device) for u, g, b in read])
        rows = [_row_sums(u, g) for u, g, _ in read]  # [units] each
        units = tuple(len(r) for r in rows)
        biases = [b.reshape(-1) if b is not None else r.new_zeros(len(r)) for (_, _, b), r in zip(read, rows)]
        dead = (torch.cat(rows) + torch.cat(biases).abs()) == 0  # promotes float32 beside float64
        counts = self._count(dead, units)
        return counts / torch.tensor(units, dtype=counts.dtype, device=counts.device)  # 0 units: NaN

    def _count(self, flags: Tensor, sizes: tuple[int, ...]) -> Tensor:
        """``[len(sizes)]``: how many of ``flags`` are set in each consecutive segment of ``sizes`` elements (the
        segment of each element made once per pattern of sizes)."""
        owner = self._owners.get(sizes)
        if owner is None:
            if len(self._owners) > 16:
                self._owners.clear()
            owner = self._owners[sizes] = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        return torch.zeros(len(sizes), device=flags.device).index_add_(0, owner.to(flags.device), flags.float())

    def _candidates(self, found: list[tuple[_Units, Tensor, Tensor | None]], device: torch.device) -> list[bool]:
        """Per found layer: whether its weight rows must be read (False: no bias entry is zero, so no unit is
        dead). Without a free host read on this device (or without a bias) every layer is read."""
        check = [True] * len(found)
        biases = [(i, b) for i, (_, _, b) in enumerate(found) if b is not None]
        if not biases or not free_reads(device):  # elsewhere reading the flags would synchronise the device
            return check
        zero = torch.cat([b.reshape(-1) for _, b in biases]) == 0
        counts = self._count(zero, tuple(b.numel() for _, b in biases)).tolist()
        for (i, _), n in zip(biases, counts):
            check[i] = n > 0
        return check


def _row_sums(u: _Units, g: Tensor) -> Tensor:
    """Σ|g| over each unit's row of ∂L/∂W ``[units]``. A row is zero exactly when this sum is (no underflow: each
    term is at least the smallest subnormal, unlike a sum of squares; NaN and inf stay non-zero); cheaper on the CPU
    than a max of |g|."""
    if u.dim == 0 and g.dim() == 2:  # a Linear weight: its rows as they are
        return g.abs().sum(1)
    return g.movedim(u.dim, 0).flatten(1).abs().sum(1)


def _dead_fraction(u: _Units, g: Tensor, b: Tensor | None) -> Tensor:
    """The fraction of the layer's units whose row of ∂L/∂W and bias entry are exactly zero (a 0-d tensor)."""
    rows = _row_sums(u, g)
    if b is not None:
        rows = rows + b.abs()
    return (rows == 0).float().mean()

"""Dead units read from the weight gradient itself: ``grad_dead``.

A unit (an output row of a Linear layer, an output channel of a convolution) whose row of ∂L/∂W and bias entry are
exactly zero over the whole batch had ∂L/∂z = 0 for every example: no active path from its output to the loss
(a ReLU that is off everywhere, whatever applies it — a module registered anywhere, one shared module, ``F.relu``).
This needs no module hook, so it is exact for any activation and is taken on every recorded step from ``p.grad``
(see :meth:`DeadRows.measure` for what that costs where). Layers without a weight matrix (norms, gains,
embeddings, whose rows are lookups, recurrent cells, whose rows are gates) are not measured (NaN).
"""

from __future__ import annotations

import functools
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
GATHER_BELOW = 4  # a layer with fewer than 1/GATHER_BELOW of its units suspect has only their rows read
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
        self._base: dict[tuple, Tensor] = {}  # (measured columns, device) -> 0 there, NaN elsewhere
        self._wanted: dict[int, tuple[list[int], list[_Units]]] = {}  # id of a measured list -> its unit layers

    def measure(self, measured: list[int], device: torch.device) -> Tensor | None:
        """``[layers]``: the dead fraction of each unit layer whose weight is in ``measured`` and has a dense
        gradient now, NaN elsewhere; None when there is none.

        A dead unit's bias gradient is exactly zero (∂L/∂b_j sums the unit's ∂L/∂z, all zero), so on the CPU
        (where reading costs no device sync) the bias gradients of all layers are tested first, in one pass, and
        only layers with a zero bias entry (or without a bias) have weight rows read — only the rows of those
        units when they are few: a healthy step costs a few operations, not a reduction per layer. Elsewhere every
        layer's rows are reduced (no host read)."""
        found = self._found(measured)
        if not found:
            return None
        cols = tuple(u.col for u, _, _ in found)
        base = self._base.get((cols, device))  # 0 at the measured layers, NaN elsewhere (shared, never written to)
        if base is None:
            if len(self._base) > 16:
                self._base.clear()
            base = torch.full((self.n_layers,), float("nan"))
            base[list(cols)] = 0.0
            base = self._base[(cols, device)] = base.to(device)
        if free_reads(device):
            read = self._suspects(found)
            if not read:
                return base
        else:
            read = [(u, g, b, None) for u, g, b in found]
        at = torch.tensor([u.col for u, *_ in read], device=device)
        return base.index_put((at,), self._fractions(read, device).to(device))

    def _found(self, measured: list[int]) -> list[tuple[_Units, Tensor, Tensor | None]]:
        """The unit layers whose weight is among ``measured`` and has a dense gradient, with their weight and bias
        gradients (detached only when made with ``create_graph=True``)."""
        wanted = self._wanted.get(id(measured))
        if wanted is None or wanted[0] is not measured:  # the watch's index lists are kept objects: cached by them
            if len(self._wanted) > 16:
                self._wanted.clear()
            chosen = set(measured)
            wanted = self._wanted[id(measured)] = (measured, [u for u in self.units if u.weight in chosen])
        found: list[tuple[_Units, Tensor, Tensor | None]] = []
        params = self.params
        for u in wanted[1]:
            g = params[u.weight].grad
            if g is None or g.layout != torch.strided:
                continue
            b = params[u.bias].grad if u.bias is not None else None
            if b is not None and b.layout != torch.strided:
                b = None
            found.append((u, _plain(g), _plain(b) if b is not None else None))
        return found

    def _suspects(
        self, found: list[tuple[_Units, Tensor, Tensor | None]]
    ) -> list[tuple[_Units, Tensor, Tensor | None, Tensor | None]]:
        """The layers whose rows must be read, each with the units to read (None: all): those with a zero bias
        entry (one test of all bias gradients, one host read of the counts; none in a healthy step) and those
        without a bias. A layer with few such units has only their rows read (their bias entries are zero: the
        rows decide); with many, every row, in order (cheaper than gathering them)."""
        read: list[tuple[_Units, Tensor, Tensor | None, Tensor | None]] = []
        read += [(u, g, None, None) for u, g, b in found if b is None]
        with_bias = [(u, g, b) for u, g, b in found if b is not None]
        if with_bias:
            sizes = [b.numel() for _, _, b in with_bias]
            zero = torch.cat([b.reshape(-1) for _, _, b in with_bias]) == 0
            if not read and not zero.any():  # the healthy step: one host read, nothing else
                return read
            counts = self._count(zero, tuple(sizes)).tolist()  # zero bias entries per layer
            for (u, g, b), n, layer_zero in zip(with_bias, counts, zero.split(sizes)):
                if not n:  # no zero bias entry: no dead unit
                    continue
                if n * GATHER_BELOW < len(layer_zero):
                    read.append((u, g, None, layer_zero.nonzero().flatten()))
                else:
                    read.append((u, g, b, None))
        return read

    def _fractions(
        self, read: list[tuple[_Units, Tensor, Tensor | None, Tensor | None]], device: torch.device
    ) -> Tensor:
        """The dead fraction of each layer of ``read`` ``[len(read)]``: a sum of |g| per row read (the rows of
        the units given, or all) plus |∂L/∂b|, then one test and one count for all layers together (a handful
        of operations per step, not a dozen per layer). A unit is dead when its row and bias entry are zero."""
        if len({g.device for _, g, _, _ in read}) > 1:  # a model split over devices: each layer on its own
            return torch.stack([_dead_fraction(u, g, b, units).to(device) for u, g, b, units in read])
        rows = [_row_sums(u, g, units) for u, g, _, units in read]
        if any(b is not None for _, _, b, _ in read):  # + |∂L/∂b| of the units read
            biases = [b.reshape(-1) if b is not None else r.new_zeros(len(r)) for (_, _, b, _), r in zip(read, rows)]
            dead = (torch.cat(rows) + torch.cat(biases).abs()) == 0  # promotes float32 beside float64
        else:
            dead = torch.cat(rows) == 0
        counts = self._count(dead, tuple(len(r) for r in rows))
        total = [g.shape[u.dim] for u, g, _, _ in read]
        return counts / torch.tensor(total, dtype=counts.dtype, device=counts.device)  # 0 units: NaN

    @staticmethod
    def _count(flags: Tensor, sizes: tuple[int, ...]) -> Tensor:
        """``[len(sizes)]``: how many of ``flags`` are set in each consecutive segment of ``sizes`` elements."""
        owner = _segments(sizes, flags.device)
        return torch.zeros(len(sizes), device=flags.device).index_add_(0, owner, flags.float())


@functools.lru_cache(maxsize=32)  # the patterns of a model's layers come back every step; a few others
def _segments(sizes: tuple[int, ...], device: torch.device) -> Tensor:
    """The segment of each element of consecutive segments of ``sizes`` elements, on ``device`` (made once: no
    copy to an accelerator per step)."""
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)).to(device)


def _plain(t: Tensor) -> Tensor:
    """``t`` without autograd history (detached only when it has one: a ``detach()`` each step costs)."""
    return t.detach() if t.requires_grad else t


def _row_sums(u: _Units, g: Tensor, units: Tensor | None = None) -> Tensor:
    """Σ|g| over each unit's row of ∂L/∂W ``[units]`` (of the units ``units`` only, when given). A row is zero
    exactly when this sum is (no underflow: each term is at least the smallest subnormal, unlike a sum of squares;
    NaN and inf stay non-zero); cheaper on the CPU than a max of |g|."""
    if units is not None:
        g = g.index_select(u.dim, units)
    if u.dim == 0 and g.dim() == 2:  # a Linear weight: its rows as they are
        return g.abs().sum(1)
    return g.movedim(u.dim, 0).flatten(1).abs().sum(1)


def _dead_fraction(u: _Units, g: Tensor, b: Tensor | None, units: Tensor | None = None) -> Tensor:
    """The fraction of the layer's units whose row of ∂L/∂W and bias entry are zero, of those ``units`` read (the
    others have a non-zero bias entry: alive), as a 0-d tensor."""
    rows = _row_sums(u, g, units)
    return ((rows + b.abs() if b is not None else rows) == 0).sum() / g.shape[u.dim]

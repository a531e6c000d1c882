"""Histograms of log10|∂L/∂θ| per layer (``grad_hist``), all layers of a step counted at once.

The bins are fixed, 0.25 decade wide, from 1e-38 (below float32's smallest normal 1.18e-38, log10 −37.93: a
vanishing layer's gradients are resolved down to where float32 underflows) to 1e4; what falls outside is counted in
the extra columns :data:`~gradwatch.probe.history.HIST_SPECIAL` (exact zeros, underflow — e.g. float64 or subnormal
values below 1e-38 —, overflow including ±inf, NaN).

Cost: the elements of every layer of a step are binned together — one ``log10``, a few elementwise operations
that give each element its (layer, bin) code without a mask, one ``bincount`` — so a sampled step costs about
fifteen tensor operations whatever the depth. A layer with more than twice ``max_elements`` elements is binned on a
fixed random sample of about ``max_elements``, scaled to its size: unbiased fractions at a fixed cost per layer.
Nothing is read on the host but the edges, which live on the CPU: no device is synchronised.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from gradwatch.probe.history import HIST_SPECIAL

HIST_EDGES = torch.linspace(-38.0, 4.0, 169)
HIST_SAMPLE = 1 << 13  # a layer with more than twice this many gradient elements is binned on a sample of this many


@functools.lru_cache(maxsize=512)
def _sample_index(n: int, k: int, device: str) -> Tensor:
    """``k`` fixed random positions in ``range(n)`` (with replacement; the same every step: cached)."""
    g = torch.Generator().manual_seed(n * 1_000_003 + k)
    return torch.randint(0, n, (k,), generator=g).to(device)


@functools.lru_cache(maxsize=64)
def _row_offsets(rows: tuple[tuple[int, int], ...], size: int, device: str) -> Tensor:
    """``row · size`` for each element of the layers ``rows`` ((row, elements) each), in order (cached: the same
    pattern every sampled step)."""
    index, lengths = zip(*rows)
    return torch.repeat_interleave(torch.tensor(index) * size, torch.tensor(lengths)).float().to(device)


def _check_regular(edges: Tensor) -> tuple[float, float, int]:
    """(first edge, last edge, bins) of ``edges``, which must be equally spaced."""
    edges = edges.cpu()
    lo, hi, bins = float(edges[0]), float(edges[-1]), len(edges) - 1
    if not torch.allclose(edges.diff().double(), torch.full((bins,), (hi - lo) / bins, dtype=torch.float64)):
        raise ValueError("log10_histograms needs equally spaced edges")
    return lo, hi, bins


_DEFAULT = _check_regular(HIST_EDGES)  # the default edges, checked once


def _regular(edges: Tensor) -> tuple[float, float, int]:
    """:func:`_check_regular`, done once for the default edges (every sampled step uses them)."""
    return _DEFAULT if edges is HIST_EDGES else _check_regular(edges)


def _elements(grads: list[Tensor], max_elements: int | None) -> tuple[Tensor | None, int]:
    """The elements binned for one layer (all of them, or a fixed sample of about ``max_elements`` drawn from each
    tensor in proportion to its size) and the layer's element count."""
    total = sum(g.numel() for g in grads)
    parts = [g.detach().reshape(-1) for g in grads if g.numel()]
    if not parts:
        return None, 0
    if max_elements is not None and total > 2 * max_elements:  # below that, picking costs more than it saves
        parts = [  # (index_select: a third of the time of p[index] on the CPU, measured)
            p.index_select(0, _sample_index(p.numel(), -(-max_elements * p.numel() // total), str(p.device)))
            for p in parts
        ]
    return (torch.cat(parts) if len(parts) > 1 else parts[0]), total


def _codes(flat: Tensor, lo: float, width: float, bins: int) -> Tensor:
    """Each element's code, as a float: 0 underflow (0 < |g| < 10^lo), 1…bins the regular bins, bins + 1 overflow
    (±inf included), bins + 2 exact zero, bins + 3 NaN (:func:`_order` puts them in the result's order).

    Arithmetic only, no mask: on the CPU a comparison into a bool tensor or a ``masked_fill_`` costs 5–20× a
    float operation, and ``log10`` of 0 takes a slow path (~30×), measured; a dead unit's rows are all zeros."""
    a = flat.abs()
    nonzero = torch.sign(a)  # 1, 0 for an exact zero, NaN for NaN
    zero = 1.0 - nonzero
    x = torch.log10(a.add_(zero)).sub_(lo).div_(width)  # in bin widths from lo; an exact zero is read as 1 (its
    #                                                       code is set below); inf -> inf, NaN -> NaN
    over = x.ceil().sub_(bins).clamp_(0.0, 1.0)  # 1 above the last edge (the last bin is closed on the right)
    code = x.floor_().clamp_(-1.0, bins - 1.0).add_(over).add_(1.0)  # 0 … bins + 1
    code = code.mul_(nonzero).add_(zero, alpha=bins + 2.0)  # exact zeros: bins + 2 (x · 1 and x + 0 are exact)
    return code.nan_to_num_(nan=bins + 3.0).float()


@functools.lru_cache(maxsize=8)
def _order(bins: int, device: str) -> Tensor:
    """The columns of the codes' counts in the result's order: the bins, then :data:`HIST_SPECIAL` (zero,
    underflow, overflow, NaN)."""
    return torch.tensor([*range(1, bins + 1), bins + 2, 0, bins + 1, bins + 3], device=device)


def log10_histograms(
    layers: list[list[Tensor]],
    edges: Tensor = HIST_EDGES,
    max_elements: int | None = HIST_SAMPLE,
    device: torch.device | None = None,
) -> Tensor:
    """Counts of log10|g| over the elements of each layer's gradients ``layers[i]``: ``[len(layers), len(edges) - 1
    + 4]``, the regular bins ``edges`` (equally spaced; the last one closed on the right, as ``numpy.histogram``)
    then the counts :data:`HIST_SPECIAL`: exact zeros, underflow (0 < |g| < 10^edges[0]), overflow (|g| >
    10^edges[-1], ±inf included) and NaN. The logarithm is taken in float64 for float64 gradients and in float32
    otherwise (so 1e-300 is underflow, not zero). A layer without gradients gets zeros. ``max_elements=None``
    counts every element; the result is on ``device`` (default: that of the gradients, else the CPU)."""
    lo, hi, bins = _regular(edges)
    width = (hi - lo) / bins
    size = bins + len(HIST_SPECIAL)
    picked = [_elements(grads, max_elements) for grads in layers]
    flats = [f for f, _ in picked if f is not None]
    if device is None:
        device = flats[0].device if flats else torch.device("cpu")
    if not flats:
        return torch.zeros(len(layers), size, device=device)
    wide = [f.dtype == torch.float64 for f in flats]
    if len(layers) > 1 and (len({f.device for f in flats}) > 1 or len(set(wide)) > 1):
        # a model split over devices, or float64 layers beside others: each layer on its own, in its precision
        return torch.stack([log10_histograms([grads], edges, max_elements, device)[0] for grads in layers])
    flat = torch.cat([f if wide[0] else f.float() for f in flats])  # [elements of all layers]
    rows = [(r, len(f)) for r, (f, _) in enumerate(picked) if f is not None]
    codes = _codes(flat, lo, width, bins) + _row_offsets(tuple(rows), size, str(flat.device))
    counts = torch.bincount(codes.to(torch.int64), minlength=len(layers) * size).view(len(layers), size)
    counts = counts[:, _order(bins, str(counts.device))].float()  # the codes' columns in the order of the result
    scale = [total / len(f) if f is not None else 1.0 for f, total in picked]  # a sampled layer scaled to its size
    if any(s != 1.0 for s in scale):
        counts = counts * torch.tensor(scale, device=counts.device)[:, None]
    return counts.to(device)


def log10_histogram(
    grads: list[Tensor],
    edges: Tensor = HIST_EDGES,
    max_elements: int | None = HIST_SAMPLE,
    device: torch.device | None = None,
) -> Tensor:
    """The counts of one layer (:func:`log10_histograms` of ``[grads]``): ``[len(edges) - 1 + 4]``."""
    return log10_histograms([grads], edges, max_elements, device)[0]

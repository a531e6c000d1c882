"""Measurements the catalogue's experiments share, all through gradwatch's own watch or plain autograd:

- :func:`layer_values_at` — one statistic of the watch history of a :class:`~gradwatch.lab.Run` at one step
  (step 0 is the gradient at initialisation: the watch reads it before the first update);
- :func:`activation_stats` — ``act_mean`` / ``act_std`` / ``act_dead`` … of every layer on a fixed batch, by a
  watch with those (opt-in, hook-based) statistics attached for one forward pass;
- :func:`backprop_gradients` — the back-propagated gradients ∂C/∂z_l of every hidden layer's pre-activation
  (Glorot & Bengio 2010's histograms), by ``torch.autograd.grad``;
- :func:`first_step_reaching` — the first x at which a curve reaches a target (steps to a training error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gradwatch.lab.experiments.base import single_threaded  # noqa: F401  (re-exported for experiments)
from gradwatch.lab.models import linear_layers
from gradwatch.stat_names import ACT_MEAN, ACT_STD, GRAD_NORM


def layer_values_at(
    run, stat: str = GRAD_NORM, step: int = 0, hidden_only: bool = True
) -> tuple[list[str], list[float]]:
    """(layer names, values) of ``stat`` in ``run.history`` at recorded row ``step`` (0: at initialisation).

    ``hidden_only`` drops the ``output`` layer and the conv front end (layers whose name is not ``hidden*``).
    """
    h = run.history
    values = h.stat(stat)[step]
    keep = [i for i, name in enumerate(h.layers) if not hidden_only or name.split(".")[-1].startswith("hidden")]
    return [h.layers[i] for i in keep], [float(values[i]) for i in keep]


def activation_stats(
    model: nn.Module, x: torch.Tensor, stats: Sequence[str] = (ACT_MEAN, ACT_STD)
) -> dict[str, list[Any]]:
    """Per-layer forward statistics of ``model`` on the batch ``x`` (one watched forward pass, hooks removed
    afterwards; the model's train/eval mode is restored). Returns ``{stat: [value per layer]}`` and ``layers``."""
    from gradwatch.probe import watch

    was = model.training
    model.eval()
    try:
        with watch(model, stats=list(stats), sample_every=1) as w:
            with torch.enable_grad():
                model(x)
            w.step()
    finally:
        model.train(was)
    out: dict[str, list[Any]] = {s: w.history.stat(s)[0].tolist() for s in stats}
    out["layers"] = list(w.history.layers)
    return out


def backprop_gradients(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> list[np.ndarray]:
    """∂C/∂z_l for every hidden linear layer l (z_l its output, before the activation), C the mean
    cross-entropy over the batch; one flat float64 array (examples × units) per layer, input side first.

    The layers' outputs are captured by forward hooks that are removed before returning.
    """
    layers = [m for name, m in linear_layers(model) if name.split(".")[-1].startswith("hidden")]
    outs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, inp, out: outs.append(out)) for m in layers]
    try:
        with torch.enable_grad():
            loss = F.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, outs)
    finally:
        for h in handles:
            h.remove()
    return [g.detach().double().reshape(-1).numpy() for g in grads]


def first_step_reaching(xs: Sequence[float], ys: Sequence[float], target: float) -> float | None:
    """The first ``x`` whose ``y`` is ≤ ``target`` (None when the curve never gets there)."""
    for x, y in zip(xs, ys):
        if y <= target:
            return float(x)
    return None

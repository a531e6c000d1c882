"""The plain fully connected net of the seeds and the initialisation of its layers.

Shared by the lab (which adds normalisation, residual blocks, recurrent cells, … in :mod:`gradwatch.lab.models`)
and the theory (:mod:`gradwatch.theory.compare` measures these nets at initialisation), so it lives below both.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import get_activation
from gradwatch.nn.init import get_init


def mlp(sizes: list[int], activation: str = "sigmoid") -> nn.Sequential:
    """``sizes = [n_in, h_1, …, h_k, n_out]``: Linear layers ``hidden1 … hiddenk`` each followed by the
    activation (``act1 …``), and a linear ``output`` layer producing logits (the softmax lives in the loss).
    """
    if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ConfigError("sizes", sizes, "expected at least two positive integers [inputs, ..., outputs]")
    act = get_activation(activation)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1]), start=1):
        layers[f"hidden{i}"] = nn.Linear(n_in, n_out)
        layers[f"act{i}"] = act.make()
    layers["output"] = nn.Linear(sizes[-2], sizes[-1])
    return nn.Sequential(layers)


def fill_weight(
    w: torch.Tensor,
    init: str,
    *,
    init_std: float = 0.01,
    mode: str = "fan_in",
    generator: torch.Generator | None = None,
) -> None:
    """Draw ``w`` in place with the named init; ``init_std`` is σ of ``normal`` and a of ``uniform``, ``mode``
    the fan of ``he_*``."""
    options: dict[str, dict[str, Any]] = {
        "normal": {"std": init_std},
        "uniform": {"a": init_std},
        "he_normal": {"mode": mode},
        "he_uniform": {"mode": mode},
    }
    get_init(init)(w, generator=generator, **options.get(init, {}))


@torch.no_grad()
def init_linear_layers(
    model: nn.Module,
    init: str = "xavier_uniform",
    *,
    init_std: float = 0.01,
    bias: float = 0.0,
    mode: str = "fan_in",
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Initialise every ``Linear`` / ``Conv`` weight of ``model`` with ``init`` and set its bias to ``bias``, in
    ``model.modules()`` order (so a seeded generator gives the same weights every time)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fill_weight(m.weight, init, init_std=init_std, mode=mode, generator=generator)
            if m.bias is not None:
                m.bias.fill_(bias)
    return model

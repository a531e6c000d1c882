"""Networks of the seeds. For now: the fully connected net ``input → hidden layers → classes``."""

from __future__ import annotations

from collections import OrderedDict

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


@torch.no_grad()
def initialize(model: nn.Module, init: str = "xavier_uniform", *, init_std: float = 0.01,
               bias: float = 0.0, generator: torch.Generator | None = None) -> nn.Module:
    """Initialise every ``nn.Linear`` / conv weight of ``model`` with ``init`` and set biases to ``bias``.

    ``init_std`` is used by ``normal`` only. Layers are initialised in ``model.modules()`` order, so a given
    generator seed gives the same weights every time.
    """
    fn = get_init(init)
    kwargs = {"std": init_std} if init == "normal" else {}
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fn(m.weight, generator=generator, **kwargs)
            if m.bias is not None:
                m.bias.fill_(bias)
    return model


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The model's ``nn.Linear`` layers with their module paths, input side first."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]

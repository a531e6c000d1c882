"""Networks of the seeds: fully connected nets (:func:`mlp`, :func:`feedforward`) and their initialisation.

:func:`mlp` is the plain ``input → hidden layers → classes`` net; :func:`feedforward` builds the same net with
every knob of :class:`gradwatch.lab.Config` (normalisation, residual connections, stochastic depth, dropout
variants, sparse or conv affine maps). Recurrent nets are in :mod:`gradwatch.lab.recurrent`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
from torch import nn

from gradwatch.errors import ConfigError
from gradwatch.lab.layers import Residual, ScaledAtTestDropout, SparseLinear, conv_front
from gradwatch.nn.activations import get_activation
from gradwatch.nn.init import lsuv, scale_spectral_radius
from gradwatch.nn.mlp import fill_weight, mlp

__all__ = ["build_model", "feedforward", "initialize", "linear_layers", "mlp"]

if TYPE_CHECKING:
    from gradwatch.lab.config import Config
    from gradwatch.lab.recurrent import RNNCell

LSTM_FORGET_BIAS = 1.0  # Gers, Schmidhuber & Cummins 2000: start with the forget gate open


def _hidden_layer(
    cfg: Config, i: int, n_in: int, n_out: int, generator: torch.Generator | None
) -> OrderedDict[str, nn.Module]:
    """The modules of hidden layer ``i``: affine map, norm (before or after σ), σ, dropout."""
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    parts[f"hidden{i}"] = (
        SparseLinear(n_in, n_out, cfg.density, generator) if cfg.affine == "sparse" else nn.Linear(n_in, n_out)
    )
    norm = {"none": None, "batch": lambda: nn.BatchNorm1d(n_out), "layer": lambda: nn.LayerNorm(n_out)}[cfg.norm]
    if norm is not None and cfg.norm_position == "before":
        parts[f"norm{i}"] = norm()
    parts[f"act{i}"] = get_activation(cfg.activation).make(cfg.alpha)
    if norm is not None and cfg.norm_position == "after":
        parts[f"norm{i}"] = norm()
    if cfg.dropout > 0:
        parts[f"drop{i}"] = (
            nn.Dropout(cfg.dropout) if cfg.dropout_variant == "inverted" else ScaledAtTestDropout(cfg.dropout)
        )
    return parts


def feedforward(
    cfg: Config, n_in: int, n_out: int, image_shape: tuple[int, ...] = (), generator: torch.Generator | None = None
) -> nn.Sequential:
    """The feed-forward net of ``cfg``: [conv front] → hidden layers → linear ``output`` (n_out units).

    Plain layers are named ``hidden{i}``, ``norm{i}``, ``act{i}``, ``drop{i}`` (as in :func:`mlp`); with
    ``residual`` each hidden layer is a :class:`Residual` block ``block{i}`` holding them as its branch.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    width = n_in
    if cfg.affine == "conv":
        if len(image_shape) != 2:
            raise ConfigError("affine", "conv", f"needs 2-D images, got input shape {tuple(image_shape)}")
        layers["front"], width = conv_front(
            image_shape, cfg.conv_channels, get_activation(cfg.activation).make(cfg.alpha)
        )
    for i, n_hidden in enumerate(cfg.hidden_sizes, start=1):
        parts = _hidden_layer(cfg, i, width, n_hidden, generator)
        if cfg.residual:
            layers[f"block{i}"] = Residual(nn.Sequential(parts), width, n_hidden, cfg.layer_drop)
        else:
            layers.update(parts)
        width = n_hidden
    layers["output"] = nn.Linear(width, n_out)
    return nn.Sequential(layers)


def _recurrent_weights(
    m: RNNCell | nn.RNNCellBase,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """(input weights, recurrent weights, biases) of a recurrent cell, split per gate (H rows each)."""
    from gradwatch.lab.recurrent import RNNCell

    if isinstance(m, RNNCell):
        return [m.input.weight], [m.recurrent.weight], [m.input.bias]
    gates = m.weight_ih.shape[0] // m.hidden_size
    return (
        list(m.weight_ih.chunk(gates)),
        list(m.weight_hh.chunk(gates)),
        [b for b in (m.bias_ih, m.bias_hh) if isinstance(b, torch.Tensor)],
    )  # None without bias


@torch.no_grad()
def initialize(
    model: nn.Module,
    init: str = "xavier_uniform",
    *,
    init_std: float = 0.01,
    bias: float = 0.0,
    generator: torch.Generator | None = None,
    mode: str = "fan_in",
    recurrent_init: str | None = None,
    spectral_radius: float | None = None,
    data: torch.Tensor | None = None,
) -> nn.Module:
    """Initialise every linear / conv / recurrent weight of ``model`` with ``init`` and set biases to ``bias``.

    ``init_std`` is σ of ``normal`` and a of ``uniform``; ``mode`` is the fan of ``he_*``. Recurrent cells get
    ``init`` on their input weights and ``recurrent_init`` (default ``init``) on their recurrent ones, gate by
    gate, optionally scaled to ``spectral_radius``; an LSTM's forget gate starts at bias 1. ``init="lsuv"``
    needs a batch of inputs ``data``. Layers are initialised in ``model.modules()`` order, so a given
    generator seed gives the same weights every time.
    """
    from gradwatch.lab.recurrent import RNNCell

    if init == "lsuv" and data is None:
        raise ConfigError("init", "lsuv", "LSUV is data-driven: pass a batch of inputs (data=...)")

    def fill(name: str, w: torch.Tensor) -> None:
        fill_weight(w, name, init_std=init_std, mode=mode, generator=generator)

    base = "orthogonal" if init == "lsuv" else init
    in_cells = {id(c) for m in model.modules() if isinstance(m, RNNCell) for c in m.children()}
    plain = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and id(m) not in in_cells]
    for m in model.modules():
        if isinstance(m, (RNNCell, nn.RNNCellBase)):
            w_in, w_rec, biases = _recurrent_weights(m)
            for w in w_in:
                fill(base, w)
            for w in w_rec:
                fill(recurrent_init or base, w)
                if spectral_radius is not None:
                    scale_spectral_radius(w, spectral_radius)
            for b in biases:
                b.fill_(bias)
            if isinstance(m, nn.LSTMCell):
                m.bias_ih[m.hidden_size : 2 * m.hidden_size].fill_(LSTM_FORGET_BIAS)
                if m.bias_hh is not None:
                    m.bias_hh.zero_()
        elif isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and id(m) not in in_cells:  # one of ``plain``
            fill(base, m.weight)
            if isinstance(m, SparseLinear):  # keep each unit's input variance that of the dense init
                m.weight.mul_(m.mask).div_(m.mask.mean().clamp_min(1e-12).sqrt())
            if m.bias is not None:
                m.bias.fill_(bias)
    if init == "lsuv":
        lsuv(model, data, generator=generator, layers=plain)
    return model


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The model's ``nn.Linear`` layers with their module paths, input side first."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def build_model(
    cfg: Config,
    n_in: int,
    n_out: int,
    *,
    image_shape: tuple[int, ...] = (),
    per_step: bool = False,
    generator: torch.Generator | None = None,
    data: torch.Tensor | None = None,
) -> nn.Module:
    """The initialised network of ``cfg`` for ``n_in`` inputs (per step for recurrent nets) and ``n_out``
    outputs; ``data`` is a batch of training inputs (needed by ``init="lsuv"``)."""
    from gradwatch.lab.recurrent import EchoStateNetwork, RecurrentNet

    if cfg.model == "esn":
        return EchoStateNetwork(
            n_in,
            cfg.width,
            n_out,
            spectral_radius=cfg.spectral_radius or 0.95,
            input_scale=cfg.input_scale,
            density=cfg.density if cfg.affine == "sparse" else 1.0,
            activation=cfg.activation,
            alpha=cfg.alpha,
            per_step=per_step,
            generator=generator,
        )
    model: nn.Module
    if cfg.model == "mlp":
        model = feedforward(cfg, n_in, n_out, image_shape, generator)
    else:
        model = RecurrentNet(
            cfg.model, n_in, cfg.hidden_sizes, n_out, per_step=per_step, activation=cfg.activation, alpha=cfg.alpha
        )
    model.to(cfg.device)
    return initialize(
        model,
        cfg.init,
        init_std=cfg.init_std,
        bias=cfg.bias_init,
        generator=generator,
        mode=cfg.init_mode,
        recurrent_init=cfg.recurrent_init,
        spectral_radius=cfg.spectral_radius,
        data=data,
    )

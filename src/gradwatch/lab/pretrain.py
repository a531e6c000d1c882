"""Greedy layer-wise pretraining with autoencoders (Hinton & Salakhutdinov 2006, Bengio et al. 2007; seed 000,
remedy f), then the whole net is fine-tuned by the ordinary training loop.

Hidden layer j is trained as the encoder of a one-hidden-layer autoencoder: code = σ(W_j a_{j−1} + b_j),
reconstruction = W'_j code + b'_j (an untied linear decoder), loss ‖reconstruction − a_{j−1}‖² averaged over
units and examples, where a_{j−1} is the (fixed) output of the already pretrained layers below. The encoder's
Linear (and the activation, norm and dropout right after it) are those of the net, so the pretrained weights are
the ones fine-tuned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gradwatch.errors import ConfigError


@dataclass
class AutoencoderResult:
    """Mean squared reconstruction error of one layer's autoencoder before and after its pretraining."""

    layer: str
    error_before: float
    error_after: float
    decoder: nn.Linear | None = field(default=None, repr=False)  # the trained decoder W'_j, b'_j

    def to_dict(self) -> dict:
        return {"layer": self.layer, "error_before": self.error_before, "error_after": self.error_after}


def hidden_stages(model: nn.Module) -> list[tuple[str, nn.Sequential]]:
    """Split a plain :func:`~gradwatch.lab.models.feedforward` net into one stage per hidden layer: the
    ``hidden{i}`` Linear and every module after it up to the next Linear (norm, σ, dropout)."""
    stages: list[tuple[str, nn.Sequential]] = []
    for name, m in model.named_children():
        if name == "output":
            break
        if isinstance(m, nn.Linear):
            stages.append((name, nn.Sequential()))
        if not stages:
            raise ConfigError("pretrain", "autoencoder", f"expected a hidden Linear first, found {name!r}")
        stages[-1][1].add_module(name, m)
    return stages


def _reconstruction_error(stage: nn.Module, decoder: nn.Linear, x: Tensor) -> Tensor:
    return ((decoder(stage(x)) - x) ** 2).mean()


def pretrain_autoencoders(
    model: nn.Module, x: Tensor, *, epochs: int, lr: float, batch_size: int, generator: torch.Generator | None = None
) -> list[AutoencoderResult]:
    """Pretrain every hidden layer of ``model`` in place, input side first; ``x`` are the training inputs."""
    results = []
    inputs = x
    for name, stage in hidden_stages(model):
        linear = stage[0]
        assert isinstance(linear, nn.Linear)  # hidden_stages starts every stage with its Linear
        decoder = nn.Linear(linear.out_features, linear.in_features).to(x.device)
        opt = torch.optim.Adam(list(stage.parameters()) + list(decoder.parameters()), lr=lr)
        stage.eval()
        with torch.no_grad():
            before = float(_reconstruction_error(stage, decoder, inputs))
        stage.train()
        for _ in range(epochs):
            order = torch.randperm(len(inputs), generator=generator).to(x.device)
            for start in range(0, len(inputs), batch_size):
                batch = inputs[order[start : start + batch_size]]
                opt.zero_grad(set_to_none=True)
                _reconstruction_error(stage, decoder, batch).backward()
                opt.step()
        stage.eval()
        with torch.no_grad():
            after = float(_reconstruction_error(stage, decoder, inputs))
            inputs = stage(inputs)
        stage.train()
        results.append(AutoencoderResult(name, before, after, decoder))
    return results

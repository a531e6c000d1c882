"""The order examples are shown in (seed 001: shuffle every epoch; show the examples with a large error more
often, carefully, outliers being a risk) and simple image augmentation (noise, shifts)."""

from __future__ import annotations

import torch
from torch import Tensor

HARD_EXAMPLE_FLOOR = 1e-8  # keeps every example drawable when its last loss is 0


def epoch_order(
    n: int, batch_size: int, shuffle: bool, hard_examples: float, example_loss: Tensor, generator: torch.Generator
) -> list[Tensor]:
    """The batches of one epoch, as index tensors.

    Without hard-example emphasis: all n examples once, reshuffled (or in order). With ``hard_examples = h``:
    n draws with replacement, example i with probability (1 − h)/n + h·ℓᵢ/Σℓ, ℓᵢ its loss when last seen.
    """
    if hard_examples > 0:
        loss = example_loss.detach().double().cpu().clamp_min(HARD_EXAMPLE_FLOOR)
        weights = (1 - hard_examples) / n + hard_examples * loss / loss.sum()
        idx = torch.multinomial(weights, n, replacement=True, generator=generator)
    elif shuffle:
        idx = torch.randperm(n, generator=generator)
    else:
        idx = torch.arange(n)
    idx = idx.to(example_loss.device)
    return list(idx.split(batch_size))


def augment(x: Tensor, image_shape: tuple[int, ...], noise: float, shift: int, generator: torch.Generator) -> Tensor:
    """Flattened images [B, h·w]: each shifted by up to ``shift`` pixels in each direction (zero fill), plus
    Gaussian noise of σ ``noise``."""
    h, w = image_shape[-2:]
    out = x.reshape(len(x), h, w)
    if shift > 0:
        padded = torch.nn.functional.pad(out, (shift, shift, shift, shift))
        offsets = torch.randint(0, 2 * shift + 1, (len(x), 2), generator=generator).tolist()
        out = torch.stack([padded[i, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
    out = out.reshape(len(x), -1)
    if noise > 0:
        out = out + noise * torch.randn(out.shape, generator=generator).to(out.device)
    return out

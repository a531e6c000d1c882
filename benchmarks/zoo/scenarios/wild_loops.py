"""Data, loops and measured truths shared by the scenarios on the architectures of :mod:`.wild_models`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import data
from ..loop import gen
from ..truth import ForwardHooks, check
from . import wild_models as wm


def steps_of(
    model_call: Callable, opts: list, batches: Iterator, loss_fn: Callable, before: Callable | None = None
) -> Callable[[int], float]:
    """One step: zero every optimizer's gradients, ``loss_fn(model_call(x), y)``, backward, step each optimizer.
    ``before(t, x, y)`` may alter the batch first."""

    def step(t: int) -> float:
        x, y = next(batches)
        if before is not None:
            before(t, x, y)
        for o in opts:
            o.zero_grad()
        loss = loss_fn(model_call(x), y)
        loss.backward()
        for o in opts:
            o.step()
        return loss.item()

    return step


def segmentation_batches(size: int = 32, seed: int = 0):
    """Noisy digit images ``[B, 1, 8, 8]`` and their ink masks (raw pixel > 4/16) ``[B, 1, 8, 8]``."""
    raw, _ = data.digits(centre=False)
    img = raw.view(-1, 1, 8, 8)
    g = gen(seed)
    while True:
        idx = torch.randint(0, len(img), (size,), generator=g)
        x = img[idx]
        yield x + 0.3 * torch.randn(x.shape, generator=g), (x > 0.25).float()


def diffusion_batches(size: int = 32, seed: int = 0):
    """(x_t, t) and the noise ε to predict: x_t = √ᾱ x₀ + √(1−ᾱ) ε with ᾱ = cos²(πt/2), t ~ U(0, 1)."""
    x0, _ = data.digit_images(8)
    g = gen(seed)
    while True:
        idx = torch.randint(0, len(x0), (size,), generator=g)
        t = torch.rand(size, generator=g)
        eps = torch.randn(size, 1, 8, 8, generator=g)
        a = torch.cos(t * math.pi / 2).square()[:, None, None, None]
        yield (a.sqrt() * x0[idx] + (1 - a).sqrt() * eps, t), eps


def rating_batches(users: int = 50, items: int = 40, size: int = 64, seed: int = 0, scale: float = 1.0):
    """(user ids, item ids) and ratings from a rank-4 truth plus noise."""
    g = gen(seed)
    u_f, i_f = torch.randn(users, 4, generator=g), torch.randn(items, 4, generator=g)
    while True:
        u = torch.randint(0, users, (size,), generator=g)
        i = torch.randint(0, items, (size,), generator=g)
        yield (u, i), scale * ((u_f[u] * i_f[i]).sum(-1) + 0.1 * torch.randn(size, generator=g))


def graph_batches(x: Tensor, y: Tensor):
    """The same whole graph every step (full-batch node classification)."""
    while True:
        yield x.clone(), y


def gan_data(size: int = 64, seed: int = 0):
    """Real 2-D samples N((2, −1), 0.5²) and latent noise ``[size, 4]``."""
    g = gen(seed)
    centre = torch.tensor([2.0, -1.0])
    while True:
        yield centre + 0.5 * torch.randn(size, 2, generator=g), torch.randn(size, 4, generator=g)


def gan_step(
    gan: wm.GAN, opt_d, opt_g, batches, before: Callable | None = None, record: list | None = None
) -> Callable[[int], float]:
    """One GAN step: the discriminator on real vs detached fakes (BCE), then the generator (non-saturating loss).
    ``record`` gets each step's mean fake sample."""

    def step(t: int) -> float:
        real, z = next(batches)
        if before is not None:
            before(t, real, z)
        opt_d.zero_grad()
        fake = gan.G(z)
        d_real, d_fake = gan.D(real), gan.D(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        out = gan.D(gan.G(z))
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        g_loss.backward()
        opt_g.step()
        if record is not None:
            record.append(fake.detach().mean(0))
        return d_loss.item() + g_loss.item()

    return step


class PreactDead(ForwardHooks):
    """Per named module (a Linear or a convolution), on every forward: the fraction of its output units (channels
    for a convolution) that are ≤ 0 for the whole batch (and every position) — dead after a ReLU, whatever module or
    function applies it."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__(model, names)
        self.dead: dict[str, list[float]] = {n: [] for n in names}

    def _hook(self, name: str):
        def hook(module, inputs, output):
            z = output.detach()
            units = z.movedim(1, 0).reshape(z.shape[1], -1) if z.dim() > 2 else z.T  # [units, everything else]
            self.dead[name].append(float((units <= 0).all(1).float().mean()))

        return hook


def kill_units(layer: nn.Module, fraction: float = 0.8, bias: float = -5.0) -> None:
    """The fault: the bias of the first ``fraction`` of ``layer``'s units set to ``bias``."""
    with torch.no_grad():
        layer.bias[: int(fraction * len(layer.bias))] = bias


def dead_at_start(units: PreactDead, layer: str, others: list[str]) -> dict[str, float]:
    """Check that ``layer`` has more than half its units dead at step 0 and each of ``others`` fewer than half."""
    check(units.dead[layer][0] > 0.5, f"{layer} has only {units.dead[layer][0]:.0%} dead units at step 0")
    for o in others:
        check(units.dead[o][0] < 0.5, f"{o} has {units.dead[o][0]:.0%} dead units at step 0")
    return {f"{n}_dead_step0": v[0] for n, v in units.dead.items()}


def spike_truth(norms: list[dict[str, float]], fault: int, factor: float = 100.0) -> tuple[tuple[str, ...], float]:
    """The layers whose gradient norm at step ``fault`` exceeds ``factor`` × their median over the run (from
    autograd's ``p.grad``), and the largest ratio any other step reaches."""
    median = {n: sorted(g[n] for g in norms)[len(norms) // 2] for n in norms[0]}
    layers = tuple(n for n in median if norms[fault][n] > factor * median[n])
    others = max(norms[t][n] / median[n] for t in range(len(norms)) if t != fault for n in median if median[n] > 0)
    check(bool(layers), f"no layer's gradient at step {fault} exceeded {factor:g}× its median")
    check(others < 20, f"another step's gradient reached {others:.3g}× its median")
    return layers, others


def over_one(update: dict[str, float]) -> tuple[str, ...]:
    """The layers whose ‖Δθ‖/‖θ‖ on a step (the zoo's own meter) is finite and above 1."""
    layers = tuple(n for n, r in update.items() if math.isfinite(r) and r > 1.0)
    check(bool(layers), f"no layer's update exceeded its weights: {update}")
    return layers


def finite_losses(losses: list[float]) -> None:
    check(all(math.isfinite(l) for l in losses), "the run went non-finite")


def seg_loss(reduction: str = "mean"):
    return lambda logits, mask: F.binary_cross_entropy_with_logits(logits, mask, reduction=reduction)

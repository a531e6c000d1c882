"""Architectures the rules were not written for, built the way users write them: a U-Net with skip concatenation,
a small diffusion U-Net (time embedding, GroupNorm, SiLU), residual blocks with LayerScale, a GAN (two networks in
one container whose ``forward`` is never called), a recommender with ``nn.Embedding(sparse=True)``, LoRA adapters
on frozen layers, a graph convolutional net, a custom L2-normalisation layer, and MLPs whose ReLUs are registered
after all the Linear layers, shared (one ``self.relu``) or functional (``F.relu``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "leaky": nn.LeakyReLU}


class UNet(nn.Module):
    """Two-level U-Net on 8×8 images: enc1 → pool → enc2 → up (transposed conv) → cat with enc1 → dec1 → out."""

    def __init__(
        self, ch: int = 8, act: str = "relu", cin: int = 1, cout: int = 1, time: bool = False, norm: bool = False
    ):
        super().__init__()
        self.enc1 = nn.Conv2d(cin, ch, 3, padding=1)
        self.norm1 = nn.GroupNorm(2, ch) if norm else nn.Identity()
        self.act1 = ACT[act]()
        self.enc2 = nn.Conv2d(ch, 2 * ch, 3, padding=1)
        self.act2 = ACT[act]()
        self.time = nn.Linear(1, 2 * ch) if time else None
        self.up = nn.ConvTranspose2d(2 * ch, ch, 2, stride=2)
        self.dec1 = nn.Conv2d(2 * ch, ch, 3, padding=1)
        self.norm2 = nn.GroupNorm(2, ch) if norm else nn.Identity()
        self.act3 = ACT[act]()
        self.out = nn.Conv2d(ch, cout, 1)

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:  # [B, cin, 8, 8] -> [B, cout, 8, 8]
        e1 = self.act1(self.norm1(self.enc1(x)))
        z = self.enc2(F.max_pool2d(e1, 2))  # [B, 2ch, 4, 4]
        if self.time is not None:
            z = z + self.time(t[:, None])[:, :, None, None]
        e2 = self.act2(z)
        d = torch.cat([self.up(e2), e1], 1)  # skip concatenation
        return self.out(self.act3(self.norm2(self.dec1(d))))


class LayerScaleBlock(nn.Module):
    """Pre-LN residual MLP block with LayerScale (Touvron et al. 2021): x + γ ⊙ mlp(LN(x)), γ initialised small."""

    def __init__(self, d: int, init: float):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * d, d)
        self.gamma = nn.Parameter(torch.full((d,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.gamma * self.fc2(self.act(self.fc1(self.norm(x))))


class LayerScaleNet(nn.Module):
    def __init__(self, init: float, d: int = 32, blocks: int = 3, classes: int = 10):
        super().__init__()
        self.embed = nn.Linear(64, d)
        self.blocks = nn.Sequential(*[LayerScaleBlock(d, init) for _ in range(blocks)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(self.blocks(self.embed(x))))


def chain(
    widths: list[int], act: str, init_std: float | None = None, gen=None, last_act: bool = False
) -> nn.Sequential:
    """Linear layers with an activation module after each (but the last unless ``last_act``)."""
    parts: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        fc = nn.Linear(a, b)
        if init_std is not None:
            with torch.no_grad():
                fc.weight.copy_(torch.randn(b, a, generator=gen) * init_std / a**0.5)
                fc.bias.zero_()
        parts.append(fc)
        if i < len(widths) - 2 or last_act:
            parts.append(ACT[act]())
    return nn.Sequential(*parts)


class GAN(nn.Module):
    """Generator and discriminator in one container; the loop calls ``gan.G`` and ``gan.D``, never ``gan``."""

    def __init__(self, g: nn.Sequential, d: nn.Sequential):
        super().__init__()
        self.G, self.D = g, d

    def forward(self, z: Tensor) -> Tensor:  # pragma: no cover - the point: the loop never calls it
        return self.D(self.G(z))


class Recommender(nn.Module):
    """Users and items as sparse embeddings, an MLP on their concatenation predicts the rating."""

    def __init__(self, users: int = 50, items: int = 40, d: int = 16, hidden: int = 32):
        super().__init__()
        self.user = nn.Embedding(users, d, sparse=True)
        self.item = nn.Embedding(items, d, sparse=True)
        self.fc1 = nn.Linear(2 * d, hidden)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.act2 = nn.ReLU()
        self.out = nn.Linear(hidden, 1)

    def forward(self, u: Tensor, i: Tensor) -> Tensor:  # [B], [B] -> [B]
        h = torch.cat([self.user(u), self.item(i)], -1)
        return self.out(self.act2(self.fc2(self.act1(self.fc1(h))))).squeeze(-1)


class LoRALinear(nn.Module):
    """A frozen ``base`` Linear plus a trainable low-rank update B·A (Hu et al. 2021): A Kaiming-uniform, B zero."""

    def __init__(self, fan_in: int, fan_out: int, rank: int = 4, alpha: float = 8.0):
        super().__init__()
        self.base = nn.Linear(fan_in, fan_out)
        self.base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(rank, fan_in))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = nn.Parameter(torch.zeros(fan_out, rank))
        self.scale = alpha / rank

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + self.scale * (x @ self.lora_A.T @ self.lora_B.T)


class LoRANet(nn.Module):
    def __init__(self, widths=(64, 64, 64), classes: int = 10):
        super().__init__()
        self.fc1 = LoRALinear(widths[0], widths[1])
        self.act1 = nn.ReLU()
        self.fc2 = LoRALinear(widths[1], widths[2])
        self.act2 = nn.ReLU()
        self.head = nn.Linear(widths[2], classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.act2(self.fc2(self.act1(self.fc1(x)))))


class GCN(nn.Module):
    """Graph convolutions h ← σ(Â h W) (Kipf & Welling 2017) on a fixed normalised adjacency Â; ``layers.{2i}`` are the
    Linear maps, ``layers.{2i+1}`` their activations, the last Linear gives the class logits."""

    def __init__(self, adj: Tensor, widths: list[int], act: str = "relu", init_std: float | None = None, gen=None):
        super().__init__()
        self.register_buffer("adj", adj)
        self.layers = chain(widths, act, init_std, gen)

    def forward(self, x: Tensor) -> Tensor:  # [N, features] -> [N, classes]
        h = x
        for m in self.layers:
            h = self.adj @ m(h) if isinstance(m, nn.Linear) else m(h)
        return h


def block_graph(
    n: int = 90,
    blocks: int = 3,
    p_in: float = 0.2,
    p_out: float = 0.01,
    features: int = 16,
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """A stochastic block model: (Â = D^-½(A + I)D^-½ ``[n, n]``, node features ``[n, features]``, labels ``[n]``);
    a node's features are its block's mean vector plus Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % blocks
    same = y[:, None] == y[None, :]
    a = (torch.rand(n, n, generator=g) < torch.where(same, p_in, p_out)).float()
    a = torch.triu(a, 1)
    a = a + a.T + torch.eye(n)
    d = a.sum(1).rsqrt()
    means = torch.randn(blocks, features, generator=g)
    x = means[y] + noise * torch.randn(n, features, generator=g)
    return d[:, None] * a * d[None, :], x, y


class L2Norm(nn.Module):
    """ParseNet-style L2 normalisation with a learned per-channel scale (initialised at ``init``): not a class any
    library names a norm layer."""

    def __init__(self, d: int, init: float = 20.0):
        super().__init__()
        self.scale = nn.Parameter(torch.full((d,), init))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x / x.norm(dim=-1, keepdim=True).clamp_min(1e-6)


class L2NormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.l2norm = L2Norm(64)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(64, 64)
        self.act2 = nn.ReLU()
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.l2norm(self.fc1(x))))))


class ReluAfterNet(nn.Module):
    """fc1…fc4 registered first, then their ReLUs act1…act3 (the registration order says nothing of the data flow)."""

    def __init__(self, widths=(64, 64, 64, 64, 10)):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act1, self.act2, self.act3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc4(self.act3(self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))))


class SharedReluNet(nn.Module):
    """One ``self.relu`` used after fc1, fc2 and fc3."""

    def __init__(self, widths=(64, 64, 64, 64, 10)):
        super().__init__()
        self.relu = nn.ReLU()
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc4(self.relu(self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))))


class FunctionalReluNet(nn.Module):
    """``F.relu`` in ``forward``: no activation module at all."""

    def __init__(self, widths=(64, 64, 64, 64, 10)):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc4(F.relu(self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))))


RELU_NETS = {"after": ReluAfterNet, "shared": SharedReluNet, "functional": FunctionalReluNet}

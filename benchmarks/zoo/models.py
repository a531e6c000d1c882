"""The zoo's architectures: small, real, and built the way their libraries build them.

Hand-built: named MLPs (``fc1, act1, fc2, …``), a ResNet of torchvision-style ``BasicBlock``s (BatchNorm, in-place
ReLU, 1×1 projection shortcuts), byte-level LSTM and vanilla-RNN language models, a top-1 mixture of experts, a
classifier with an auxiliary head and a prototype (distance) layer. Third-party: Hugging Face ``transformers``
(ResNet, ViT, BERT, GPT-2) with tiny random configs, imported lazily.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def mlp(
    widths: list[int], activation: str = "relu", init_std: float | None = None, gen: torch.Generator | None = None
) -> nn.Sequential:
    """``fc1, act1, fc2, act2, …, fcN`` (no activation after the last). ``init_std``: weights N(0, init_std²/fan_in)
    and zero biases instead of PyTorch's default init."""
    parts: list[tuple[str, nn.Module]] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]), 1):
        fc = nn.Linear(a, b)
        if init_std is not None:
            with torch.no_grad():
                fc.weight.copy_(torch.randn(b, a, generator=gen) * init_std / a**0.5)
                fc.bias.zero_()
        parts.append((f"fc{i}", fc))
        if i < len(widths) - 1:
            parts.append((f"act{i}", ACTIVATIONS[activation]()))
    return nn.Sequential(OrderedDict(parts))


def cnn(depth: int = 8, width: int = 8, activation: str = "sigmoid", classes: int = 10) -> nn.Sequential:
    """``conv1, act1, …, convN, actN, pool, flat, fc``: 3×3 convolutions (padding 1) on one-channel images."""
    parts: list[tuple[str, nn.Module]] = []
    for i in range(1, depth + 1):
        parts += [
            (f"conv{i}", nn.Conv2d(1 if i == 1 else width, width, 3, padding=1)),
            (f"act{i}", ACTIVATIONS[activation]()),
        ]
    parts += [("pool", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(width, classes))]
    return nn.Sequential(OrderedDict(parts))


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: conv3×3-BN-ReLU(in place)-conv3×3-BN, plus the shortcut, then ReLU(in place)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """A small torchvision-style ResNet: stem conv-BN-ReLU, stages of BasicBlocks, global average pool, fc."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32), blocks: int = 1, classes: int = 10, channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            stages.append(
                nn.Sequential(
                    *[BasicBlock(cin if j == 0 else w, w, 2 if (i > 0 and j == 0) else 1) for j in range(blocks)]
                )
            )
            cin = w
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(widths[-1], classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


class ByteLM(nn.Module):
    """Embedding → recurrent layer (``nn.LSTM`` or tanh ``nn.RNN``) → linear head over 128 byte values."""

    def __init__(self, cell: str = "lstm", hidden: int = 64, embed: int = 16, vocab: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.RNN)(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids: Tensor) -> Tensor:  # [B, T] -> [B, T, vocab]
        out, _ = self.rnn(self.embed(ids))
        return self.head(out)


class SequenceRegressor(nn.Module):
    """A tanh ``nn.RNN`` over a real-valued sequence ``[B, T, inputs]`` with a linear read-out of the last state."""

    def __init__(self, inputs: int = 2, hidden: int = 32):
        super().__init__()
        self.rnn = nn.RNN(inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:  # [B, T, inputs] -> [B]
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


class Top1MoE(nn.Module):
    """Switch-style mixture: a router picks one of ``experts`` MLPs per example; the expert's output is scaled by
    the router probability (so the router learns). An expert that no example chose gets no gradient that step."""

    def __init__(self, inputs: int = 64, width: int = 32, experts: int = 4, classes: int = 10):
        super().__init__()
        self.embed = nn.Linear(inputs, width)
        self.router = nn.Linear(width, experts)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width)) for _ in range(experts)
        )
        self.head = nn.Linear(width, classes)
        self.last_choice: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.embed(x))  # [B, width]
        prob = self.router(h).softmax(-1)  # [B, experts]
        choice = prob.argmax(-1)  # [B]
        self.last_choice = choice.detach()
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            rows = torch.nonzero(choice == e).squeeze(1)
            if len(rows):  # unused experts are not called at all, as in real MoE dispatch
                out = out.index_add(0, rows, expert(h[rows]) * prob[rows, e : e + 1])
        return self.head(h + out)


class AuxHeadNet(nn.Module):
    """A body with a main head and an auxiliary head that the loop uses only on some steps."""

    def __init__(self, inputs: int = 64, width: int = 64, classes: int = 10):
        super().__init__()
        self.body = mlp([inputs, width, width])
        self.act = nn.ReLU()
        self.head = nn.Linear(width, classes)
        self.aux = nn.Linear(width, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.act(self.body(x))
        return self.head(h), self.aux(h)


def pairwise_distance(h: Tensor, p: Tensor) -> Tensor:
    """‖h_i − p_k‖₂ ``[B, K]`` written as sqrt of the summed squares: its backward is NaN where a distance is
    exactly 0 (d√u/du = ∞ times du/dh = 0), while the forward pass stays finite."""
    return ((h[:, None, :] - p[None]) ** 2).sum(-1).sqrt()


class Prototypes(nn.Module):
    """A prototype layer: distances of the features to ``k`` learned prototypes (logits = −distance)."""

    def __init__(self, width: int, k: int, gen: torch.Generator | None = None):
        super().__init__()
        self.p = nn.Parameter(torch.randn(k, width, generator=gen) * 0.5)

    def forward(self, h: Tensor) -> Tensor:
        return -pairwise_distance(h, self.p)


class ProtoNet(nn.Module):
    """fc1 → tanh → prototypes(10) → scale: a distance-based classifier."""

    def __init__(self, inputs: int = 64, width: int = 16, classes: int = 10, gen: torch.Generator | None = None):
        super().__init__()
        self.fc1 = nn.Linear(inputs, width)
        self.act1 = nn.Tanh()
        self.proto = Prototypes(width, classes, gen)
        self.scale = nn.Linear(classes, classes)

    def features(self, x: Tensor) -> Tensor:
        return self.act1(self.fc1(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale(self.proto(self.features(x)))


# ---- Hugging Face transformers, tiny random configs -------------------------------------------------------------


def _transformers():
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the zoo\'s transformer scenarios need Hugging Face transformers: pip install "gradwatch[zoo]"'
        ) from exc
    transformers.logging.set_verbosity_error()
    return transformers


def hf_resnet(classes: int = 10):
    """``ResNetForImageClassification``: 1 channel, stages of widths 8 and 16, one basic block each."""
    t = _transformers()
    cfg = t.ResNetConfig(
        num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=classes
    )
    return t.ResNetForImageClassification(cfg)


def hf_vit(image: int = 8, classes: int = 10):
    """``ViTForImageClassification``: 8×8 one-channel images, 2×2 patches, width 32, 2 layers, 2 heads."""
    t = _transformers()
    cfg = t.ViTConfig(
        image_size=image,
        patch_size=2,
        num_channels=1,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=classes,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return t.ViTForImageClassification(cfg)


def hf_bert(vocab: int = 32, seq: int = 16, classes: int = 2):
    """``BertForSequenceClassification`` (post-LN): width 32, 2 layers, 2 heads, no dropout."""
    t = _transformers()
    cfg = t.BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=seq,
        num_labels=classes,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return t.BertForSequenceClassification(cfg)


def hf_gpt2(vocab: int = 128, seq: int = 32, layers: int = 2):
    """``GPT2LMHeadModel`` with ``lm_head`` tied to ``transformer.wte``: width 32, 2 heads, no dropout."""
    t = _transformers()
    cfg = t.GPT2Config(
        vocab_size=vocab,
        n_positions=seq,
        n_embd=32,
        n_layer=layers,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
    )
    model = t.GPT2LMHeadModel(cfg)
    if model.lm_head.weight is not model.transformer.wte.weight:
        raise RuntimeError("GPT2LMHeadModel(tie_word_embeddings=True) did not tie lm_head to transformer.wte")
    return model


def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Next-token cross-entropy of ``logits [B, T, V]`` against ``targets [B, T]``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

"""Healthy runs of real architectures: each must learn (its loss falls) and get no finding at all."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import data, models, truth
from ..label import HEALTHY, Run
from ..loop import (
    classify_step,
    clipped_step,
    cpu_grad_scaler,
    digit_batches,
    done,
    fit,
    gen,
    lambda_logits,
    learned,
    lm_step,
    scaled_backward_and_step,
)
from ..registry import scenario
from ..truth import check


@scenario("resnet_bn_inplace")
def resnet_bn_inplace() -> Run:
    """Hand-built torchvision-style ResNet (BasicBlocks, BatchNorm, in-place ReLU) on digits, stats="full": healthy."""
    x, y = data.digit_images(8)
    model = models.ResNet((8, 16, 32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    w, losses = fit(model, opt, classify_step(model, opt, data.batches(x, y, 64, gen())), 60, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("hf_resnet", needs=("transformers",))
def hf_resnet() -> Run:
    """Hugging Face ResNetForImageClassification (tiny random config) on 16×16 digits, default statistics: healthy.
    (``resnet_bn_inplace`` watches with ``stats="full"``, whose module hooks meet the blocks' in-place residual add.)"""
    x, y = data.digit_images(16)
    model = models.hf_resnet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    w, losses = fit(model, opt, classify_step(lambda_logits(model), opt, data.batches(x, y, 64, gen())), 60)
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("hf_vit", needs=("transformers",))
def hf_vit() -> Run:
    """Hugging Face ViTForImageClassification (8×8 digits, 2×2 patches, width 32, 2 layers): healthy."""
    x, y = data.digit_images(8)
    model = models.hf_vit()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    w, losses = fit(
        model, opt, classify_step(lambda_logits(model), opt, data.batches(x, y, 64, gen())), 100, stats="full"
    )
    return done(w, HEALTHY, **learned(losses, 0.7))


@scenario("hf_bert", needs=("transformers",))
def hf_bert() -> Run:
    """Hugging Face BertForSequenceClassification (post-LN, width 32, 2 layers) on 'does token 3 occur': healthy;
    every layer (embeddings and LayerNorms included) moves by more than 1e-4 of its norm per step (median)."""
    model = models.hf_bert(vocab=32, seq=16)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = data.presence_batches(32, 16, 32, gen())
    with truth.recorded_updates(model, opt) as updates:
        w, losses = fit(model, opt, classify_step(lambda_logits(model), opt, batches), 120, stats="full")
    median = _every_layer_moves(updates)
    slowest = min(median, key=median.get)
    return done(w, HEALTHY, slowest_layer=slowest, its_median_update_ratio=median[slowest], **learned(losses, 0.6))


@scenario("hf_gpt2", needs=("transformers",))
def hf_gpt2() -> Run:
    """Hugging Face GPT2LMHeadModel (lm_head tied to wte, width 32, 2 layers) on text bytes: healthy; every layer
    (LayerNorms included) moves by more than 1e-4 of its norm per step (median)."""
    model = models.hf_gpt2()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with truth.recorded_updates(model, opt) as updates:
        w, losses = fit(model, opt, lm_step(model, opt, data.text_batches(32, 16, gen()), hf=True), 60, stats="full")
    median = _every_layer_moves(updates)
    slowest = min(median, key=median.get)
    return done(w, HEALTHY, slowest_layer=slowest, its_median_update_ratio=median[slowest], **learned(losses, 0.8))


def _byte_lm_run(cell: str) -> Run:
    """A byte-level LM under Adam; beyond a falling loss, the zoo checks that every layer keeps moving: the median
    of its own ‖Δθ‖/‖θ‖ per step (the embedding included, whose rows get sparse gradients) is above 1e-4."""
    model = models.ByteLM(cell)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    with truth.recorded_updates(model, opt) as updates:
        w, losses = fit(model, opt, lm_step(model, opt, data.text_batches(32, 16, gen()), hf=False), 60, stats="full")
    return done(w, HEALTHY, median_update_ratio=_every_layer_moves(updates), **learned(losses, 0.8))


def _every_layer_moves(updates: list[dict[str, float]], least: float = 1e-4) -> dict[str, float]:
    """Check that every layer's median ‖Δθ‖/‖θ‖ per step (the zoo's own measurement) is above ``least``; return
    the medians."""
    median = {n: sorted(u[n] for u in updates)[len(updates) // 2] for n in updates[0]}
    slow = {n: m for n, m in median.items() if not m > least}
    check(not slow, f"layers hardly move: median ‖Δθ‖/‖θ‖ {slow}")
    return median


@scenario("lstm_lm")
def lstm_lm() -> Run:
    """Byte-level LSTM language model (hidden 64) on text: healthy; every layer, the embedding too, moves."""
    return _byte_lm_run("lstm")


@scenario("rnn_lm")
def rnn_lm() -> Run:
    """Byte-level vanilla tanh RNN language model (hidden 64, 32 steps) on text: healthy; every layer moves."""
    return _byte_lm_run("rnn")


@scenario("moe_top1")
def moe_top1() -> Run:
    """Top-1 mixture of 4 experts on digits; some experts get no example (and no gradient) on some steps: healthy."""
    model = models.Top1MoE()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    inner = classify_step(model, opt, digit_batches(16))
    idle_steps = []

    def step(t: int) -> float:
        loss = inner(t)
        if len(torch.unique(model.last_choice)) < len(model.experts):
            idle_steps.append(t)
        return loss

    x, _ = data.digits()
    dead_start = _expert_dead_units(model, x)
    w, losses = fit(model, opt, step, 80, stats="full")
    dead_end = _expert_dead_units(model, x)
    check(len(idle_steps) > 0, "every expert got an example on every step")
    check(max(dead_start + dead_end) < 0.5, f"an expert has most units dead on the whole data set: {dead_end}")
    return done(
        w, HEALTHY, idle_expert_steps=len(idle_steps), expert_dead_fraction_end=dead_end, **learned(losses, 0.7)
    )


def _expert_dead_units(model: models.Top1MoE, x: torch.Tensor) -> list[float]:
    """Per expert, the fraction of its hidden ReLU units that are zero on every one of the 1797 digits (a unit
    that is zero on the one or two examples routed to its expert in a step is not dead)."""
    with torch.no_grad():
        h = torch.relu(model.embed(x))
        return [float((torch.relu(e[0](h)) == 0).all(0).float().mean()) for e in model.experts]


def _two_optimizer_run(watched: str) -> Run:
    """An MLP whose body (fc1, fc2) is stepped by SGD+momentum and head (fc3) by Adam; ``watched``: ``"both"``
    (``optimizer=[a, b]``) or ``"body"`` (the body's optimizer only). The zoo measures the head's own update."""
    model = models.mlp([64, 64, 64, 10])
    body = [p for n, p in model.named_parameters() if not n.startswith("fc3")]
    opt_a = torch.optim.SGD(body, lr=0.05, momentum=0.9)
    opt_b = torch.optim.Adam(model.fc3.parameters(), lr=1e-3)
    batches = digit_batches()
    head_moves = []

    def step(t: int) -> float:
        x, y = next(batches)
        opt_a.zero_grad()
        opt_b.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt_a.step()
        before = model.fc3.weight.detach().clone()
        opt_b.step()
        head_moves.append(float((model.fc3.weight.detach() - before).norm() / before.norm()))
        return loss.item()

    w, losses = fit(model, [opt_a, opt_b] if watched == "both" else opt_a, step, 60, stats="full")
    check(min(head_moves) > 1e-4, f"the head moved by only {min(head_moves):.2g} of its norm on some step")
    return done(w, HEALTHY, head_min_update_ratio=min(head_moves), **learned(losses, 0.6))


@scenario("two_optimizers")
def two_optimizers() -> Run:
    """An MLP whose body is stepped by SGD+momentum and head by Adam, both watched (optimizer=[a, b]): healthy."""
    return _two_optimizer_run("both")


@scenario("two_optimizers_one_watched")
def two_optimizers_one_watched() -> Run:
    """The same two-optimizer MLP watched through the body's optimizer only: the head, stepped by the other
    optimizer, moves between the watched steps and is not stalled. Healthy."""
    return _two_optimizer_run("body")


@scenario("torch_transformer_preln")
def torch_transformer_preln() -> Run:
    """PyTorch's own nn.TransformerEncoder (pre-LN, GELU, width 32, 2 layers) on 'does token 3 occur': healthy.
    It fits the task to a loss near 1e-7, after which one batch with a gradient of ordinary size (the zoo checks
    that no step's gradient norm exceeds 10× the step-0 norm) can stand thousands of times above the tiny
    gradients around it: growth from a tiny scale, not an explosion."""

    class Encoder(nn.Module):
        def __init__(self, vocab: int = 32, d: int = 32, seq: int = 16):
            super().__init__()
            self.embed = nn.Embedding(vocab, d)
            self.pos = nn.Parameter(torch.randn(seq, d) * 0.02)
            layer = nn.TransformerEncoderLayer(
                d, 2, 64, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(d, 2)

        def forward(self, ids):  # [B, T] -> [B, 2]
            return self.head(self.encoder(self.embed(ids) + self.pos).mean(1))

    model = Encoder()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    norms = []
    total = lambda: norms.append(sum(g * g for g in truth.grad_norms(model).values()) ** 0.5)  # noqa: E731
    with truth.recorded_updates(model, opt, total):
        w, losses = fit(
            model, opt, classify_step(model, opt, data.presence_batches(32, 16, 32, gen())), 80, stats="full"
        )
    check(
        max(norms) <= 10 * norms[0],
        f"the gradient norm rose to {max(norms):.3g}, over 10× its step-0 value {norms[0]:.3g}",
    )
    return done(
        w,
        HEALTHY,
        grad_norm_step0=norms[0],
        grad_norm_max_after_10=max(norms[10:]),
        grad_norm_min=min(norms),
        **learned(losses, 0.6),
    )


@scenario("aux_head_some_steps")
def aux_head_some_steps() -> Run:
    """A classifier with an auxiliary head (digit parity) used on 1 step in 4 (no gradient on the others): healthy."""
    model = models.AuxHeadNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = digit_batches()

    def step(t: int) -> float:
        x, y = next(batches)
        opt.zero_grad()
        logits, aux = model(x)
        loss = F.cross_entropy(logits, y)
        if t % 4 == 0:
            loss = loss + F.cross_entropy(aux, y % 2)
        loss.backward()
        check((model.aux.weight.grad is None) == (t % 4 != 0), "the aux head's gradient is not as scheduled")
        opt.step()
        return F.cross_entropy(logits, y).item()

    w, losses = fit(model, opt, step, 80, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("grad_accumulation")
def grad_accumulation() -> Run:
    """An MLP trained with 4 micro-batches of 16 accumulated per optimizer step: healthy."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = digit_batches(16)

    def step(t: int) -> float:
        opt.zero_grad()
        total = 0.0
        for _ in range(4):
            x, y = next(batches)
            loss = F.cross_entropy(model(x), y) / 4
            loss.backward()
            total += loss.item()
        opt.step()
        return total

    w, losses = fit(model, opt, step, 50, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("clipping_loop")
def clipping_loop() -> Run:
    """An MLP trained by SGD with clip_grad_norm_(max_norm=0.5) on every step (clipping active): healthy."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    batches = digit_batches()
    pre_clip: list[float] = []
    w, losses = fit(model, opt, clipped_step(model, opt, batches, F.cross_entropy, 0.5, pre_clip), 60, stats="full")
    clipped = sum(n > 0.5 for n in pre_clip)
    check(clipped >= len(pre_clip) // 2, f"clipping was active on only {clipped} of {len(pre_clip)} steps")
    return done(w, HEALTHY, clipped_steps=clipped, **learned(losses, 0.6))


@scenario("grad_scaler")
def gradscaler() -> Run:
    """An MLP trained through torch.amp.GradScaler('cpu') (scale, unscale in step, update): healthy."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = cpu_grad_scaler()
    batches = digit_batches()
    skipped = []

    def step(t: int) -> float:
        x, y = next(batches)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        scaled_backward_and_step(loss, opt, scaler, skipped)
        return loss.item()

    w, losses = fit(model, opt, step, 60, stats="full")
    check(sum(skipped) < 5, f"the scaler skipped {sum(skipped)} of {len(skipped)} steps")
    return done(w, HEALTHY, skipped_steps=sum(skipped), **learned(losses, 0.6))

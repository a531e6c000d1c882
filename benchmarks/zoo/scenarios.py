"""The scenarios: one function each, a short CPU run of a real architecture under ``gw.watch`` returning a
:class:`~.label.Run` whose label is computed from the run itself (autograd, the zoo's hooks, the injected fault).

Healthy runs assert that the model learns (the loss falls); broken runs assert that the fault happened. Either
failure raises :class:`~.truth.PremiseError`: the scenario is wrong, not the diagnosis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import gradwatch as gw

from . import data, models, truth
from .label import HEALTHY, KINDS, Expect, Run, broken
from .truth import check

STEP_FN = Callable[[int], float]


@dataclass(frozen=True)
class Scenario:
    """A registered scenario. ``expects``: the kinds its label requires (none for a healthy run), declared up front
    so that a scenario that crashes still counts as missing them."""

    name: str
    fn: Callable[[], Run]
    expects: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # optional packages (import names)

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0]

    def missing(self) -> list[str]:
        """The optional packages this scenario needs that do not import here."""
        out = []
        for name in self.needs:
            try:
                __import__(name)
            except ImportError:
                out.append(name)
        return out

    def __call__(self) -> Run:
        torch.manual_seed(0)
        run = self.fn()
        got = tuple(e.kind for e in run.label.expect)
        if sorted(got) != sorted(self.expects):
            raise RuntimeError(f"scenario {self.name} declares {self.expects} but its label expects {got}")
        return run


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, expects: tuple[str, ...] = (), needs: tuple[str, ...] = ()):
    def register(fn: Callable[[], Run]) -> Callable[[], Run]:
        SCENARIOS[name] = Scenario(name, fn, expects, needs)
        return fn
    return register


# ---- shared loop pieces ------------------------------------------------------------------------------------------

def fit(model: nn.Module, optimizer, step: STEP_FN, steps: int, **watch_options) -> tuple[gw.probe.Watcher, list[float]]:
    """Run ``step(t)`` (one full training step, returning the loss) ``steps`` times under a watch."""
    with gw.watch(model, optimizer=optimizer, **watch_options) as w:
        losses = [step(t) for t in range(steps)]
    return w, losses


def done(w, label, **facts) -> Run:
    return Run(w.history, w.diagnose(), label, facts)


def learned(losses: list[float], factor: float = 0.8, window: int = 10) -> dict[str, float]:
    """Check that the loss fell (a healthy run must learn); the first and last window means as facts."""
    check(truth.falls(losses, factor, window), f"the loss did not fall below {factor}× its start: "
          f"{sum(losses[:window]) / window:.3g} → {sum(losses[-window:]) / window:.3g}")
    return {"loss_start": sum(losses[:window]) / window, "loss_end": sum(losses[-window:]) / window}


def classify_step(model, opt, batches, loss_fn=F.cross_entropy, before: Callable | None = None) -> STEP_FN:
    """One plain classification step on ``next(batches)``; ``before(t, x, y)`` may look at or alter the model or
    the batch first."""
    def step(t: int) -> float:
        x, y = next(batches)
        if before is not None:
            before(t, x, y)
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def digit_batches(size: int = 64, seed: int = 0, centre: bool = True):
    x, y = data.digits(centre)
    return data.batches(x, y, size, torch.Generator().manual_seed(seed))


def lm_step(model, opt, batches, hf: bool) -> STEP_FN:
    def step(t: int) -> float:
        seq = next(batches)
        opt.zero_grad()
        logits = model(seq[:, :-1]).logits if hf else model(seq[:, :-1])
        loss = models.lm_loss(logits, seq[:, 1:])
        loss.backward()
        opt.step()
        return loss.item()
    return step


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- healthy: real architectures that train normally ------------------------------------------------------------

@scenario("resnet_bn_inplace")
def resnet_bn_inplace() -> Run:
    """Hand-built torchvision-style ResNet (BasicBlocks, BatchNorm, in-place ReLU) on digits: healthy."""
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


def lambda_logits(model):
    """A callable that returns the ``.logits`` of a Hugging Face model."""
    return lambda inputs: model(inputs).logits


@scenario("hf_vit", needs=("transformers",))
def hf_vit() -> Run:
    """Hugging Face ViTForImageClassification (8×8 digits, 2×2 patches, width 32, 2 layers): healthy."""
    x, y = data.digit_images(8)
    model = models.hf_vit()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    w, losses = fit(model, opt, classify_step(lambda_logits(model), opt, data.batches(x, y, 64, gen())), 100,
                    stats="full")
    return done(w, HEALTHY, **learned(losses, 0.7))


@scenario("hf_bert", needs=("transformers",))
def hf_bert() -> Run:
    """Hugging Face BertForSequenceClassification (post-LN, width 32, 2 layers) on 'does token 3 occur': healthy."""
    model = models.hf_bert(vocab=32, seq=16)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = data.presence_batches(32, 16, 32, gen())
    w, losses = fit(model, opt, classify_step(lambda_logits(model), opt, batches), 120, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("hf_gpt2", needs=("transformers",))
def hf_gpt2() -> Run:
    """Hugging Face GPT2LMHeadModel (lm_head tied to wte, width 32, 2 layers) on text bytes: healthy."""
    model = models.hf_gpt2()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    w, losses = fit(model, opt, lm_step(model, opt, data.text_batches(32, 16, gen()), hf=True), 60, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.8))


@scenario("lstm_lm")
def lstm_lm() -> Run:
    """Byte-level LSTM language model (hidden 64) on text: healthy."""
    model = models.ByteLM("lstm")
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    w, losses = fit(model, opt, lm_step(model, opt, data.text_batches(32, 16, gen()), hf=False), 60, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.8))


@scenario("rnn_lm")
def rnn_lm() -> Run:
    """Byte-level vanilla tanh RNN language model (hidden 64, 32 steps) on text: healthy."""
    model = models.ByteLM("rnn")
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    w, losses = fit(model, opt, lm_step(model, opt, data.text_batches(32, 16, gen()), hf=False), 60, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.8))


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

    w, losses = fit(model, opt, step, 80, stats="full")
    check(len(idle_steps) > 0, "every expert got an example on every step")
    return done(w, HEALTHY, idle_expert_steps=len(idle_steps), **learned(losses, 0.7))


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
    """PyTorch's own nn.TransformerEncoder (pre-LN, GELU, width 32, 2 layers) on 'does token 3 occur': healthy."""
    class Encoder(nn.Module):
        def __init__(self, vocab: int = 32, d: int = 32, seq: int = 16):
            super().__init__()
            self.embed = nn.Embedding(vocab, d)
            self.pos = nn.Parameter(torch.randn(seq, d) * 0.02)
            layer = nn.TransformerEncoderLayer(d, 2, 64, dropout=0.0, activation="gelu", batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(d, 2)

        def forward(self, ids):  # [B, T] -> [B, 2]
            return self.head(self.encoder(self.embed(ids) + self.pos).mean(1))

    model = Encoder()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    w, losses = fit(model, opt, classify_step(model, opt, data.presence_batches(32, 16, 32, gen())), 80,
                    stats="full")
    return done(w, HEALTHY, **learned(losses, 0.6))


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
    pre_clip = []

    def step(t: int) -> float:
        x, y = next(batches)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        pre_clip.append(float(nn.utils.clip_grad_norm_(model.parameters(), 0.5)))
        opt.step()
        return loss.item()

    w, losses = fit(model, opt, step, 60, stats="full")
    clipped = sum(n > 0.5 for n in pre_clip)
    check(clipped >= len(pre_clip) // 2, f"clipping was active on only {clipped} of {len(pre_clip)} steps")
    return done(w, HEALTHY, clipped_steps=clipped, **learned(losses, 0.6))


def _scaler():
    try:
        return torch.amp.GradScaler("cpu")
    except (AttributeError, RuntimeError, TypeError) as exc:  # pragma: no cover - depends on the torch build
        raise NotImplementedError(f"torch.amp.GradScaler('cpu') does not work here: {exc}") from exc


@scenario("grad_scaler")
def grad_scaler() -> Run:
    """An MLP trained through torch.amp.GradScaler('cpu') (scale, unscale in step, update): healthy."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = _scaler()
    batches = digit_batches()
    skipped = []

    def step(t: int) -> float:
        x, y = next(batches)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scale = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        skipped.append(scaler.get_scale() < scale)
        return loss.item()

    w, losses = fit(model, opt, step, 60, stats="full")
    check(sum(skipped) < 5, f"the scaler skipped {sum(skipped)} of {len(skipped)} steps")
    return done(w, HEALTHY, skipped_steps=sum(skipped), **learned(losses, 0.6))


# ---- vanishing ---------------------------------------------------------------------------------------------------

VANISHED = 1e-2  # the gradient reaching the first layer below this fraction of the output's: vanished


def _rel_ratio(model: nn.Module, first: str, last: str) -> float:
    """‖g‖/‖θ‖ of layer ``first`` over that of layer ``last``, from autograd's p.grad."""
    rel = truth.relative_grads(model)
    return rel[first] / rel[last]


_FUNCTIONAL = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid}


def _activation_gain(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> float:
    """‖∂L/∂(fc1's output)‖ / ‖∂L/∂(logits)‖ by autograd, re-running the MLP functionally (F.linear, torch.tanh…)
    so that no module hook — the watch's included — sees this extra pass."""
    h, outs = x, []
    for module in model:
        if isinstance(module, nn.Linear):
            h = F.linear(h, module.weight, module.bias)
            outs.append(h)
        else:
            h = _FUNCTIONAL[type(module)](h)
    grads = torch.autograd.grad(F.cross_entropy(h, y), [outs[0], outs[-1]])
    return float(grads[0].norm() / grads[1].norm())


@scenario("sigmoid_mlp_vanishing", expects=("vanishing",))
def sigmoid_mlp_vanishing() -> Run:
    """8 hidden sigmoid layers (PyTorch default init), SGD: the gradient vanishes toward the input from step 0."""
    model = models.mlp([64] + [32] * 8 + [10], "sigmoid")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ratios = []
    with truth.recorded_updates(model, opt, lambda: ratios.append(_rel_ratio(model, "fc1", "fc9"))):
        w, _ = fit(model, opt, classify_step(model, opt, digit_batches()), 60, stats="full")
    check(max(ratios) < 1e-2, f"fc1's relative gradient reached {max(ratios):.2g} of fc9's")
    return done(w, broken(Expect("vanishing", ("fc1",), 0),
                          forbid=("nonfinite", "exploding", "dead_units", "large_updates")),
                fc1_over_fc9_step0=ratios[0], fc1_over_fc9_max=max(ratios))


@scenario("tanh16_vanishing_recovers", expects=("vanishing",))
def tanh16_vanishing_recovers() -> Run:
    """16 tanh layers initialised small (0.6/√fan_in): the gradient reaching fc1 is ~3e-4 of the logits' at init;
    Adam repairs it in about 10 steps (then ~1), so the vanishing is an episode that recovered."""
    model = models.mlp([64] + [32] * 16 + [10], "tanh", init_std=0.6, gen=gen())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gains = []  # ‖∂L/∂(fc1 output)‖ / ‖∂L/∂logits‖ on each step's batch, by autograd
    step = classify_step(model, opt, digit_batches(), before=lambda t, x, y: gains.append(_activation_gain(model, x, y)))
    w, losses = fit(model, opt, step, 100, stats="full")
    low = [t for t, g in enumerate(gains) if g < VANISHED]
    recovered = next((t for t in range(len(gains)) if all(g >= VANISHED for g in gains[t:])), None)
    check(gains[0] < VANISHED, f"the gradient at fc1's output is {gains[0]:.2g}× the logits' at step 0")
    check(recovered is not None and recovered <= 20, f"no lasting recovery by step 20 (gains {gains[:5]}…)")
    return done(w, broken(Expect("vanishing", ("fc1",), 0, evidence=("recovered_at",)),
                          forbid=("nonfinite", "exploding", "dead_units")),
                vanishing_steps=low, recovered_at=recovered, gain_step0=gains[0], **learned(losses, 0.85))


# ---- exploding ---------------------------------------------------------------------------------------------------

def _spectral_rnn(rho: float, hidden: int = 64) -> models.SequenceRegressor:
    model = models.SequenceRegressor(2, hidden)
    with torch.no_grad():
        w = torch.randn(hidden, hidden, generator=gen(1)) / hidden ** 0.5
        w *= rho / torch.linalg.eigvals(w).abs().max()
        model.rnn.weight_hh_l0.copy_(w)
    return model


def _adding_batches(T: int, size: int, seed: int = 0, scale: float = 1.0):
    """The adding problem (Hochreiter & Schmidhuber 1997): values and a two-hot marker; target their marked sum."""
    g = gen(seed)
    while True:
        values = torch.rand(size, T, generator=g)
        marks = torch.zeros(size, T)
        idx = torch.stack([torch.randint(0, T // 2, (size,), generator=g),
                           torch.randint(T // 2, T, (size,), generator=g)], 1)
        marks.scatter_(1, idx, 1.0)
        yield torch.stack([values, marks], -1) * scale, (values * marks).sum(1)


@scenario("rnn_rho3_step0_explosion", expects=("exploding",))
def rnn_rho3_step0_explosion() -> Run:
    """Vanilla RNN (hidden 64) with ρ(W_hh) = 3 on the adding problem, T = 64: the chaotic regime gives a catastrophic
    gradient at step 0; the SGD step it causes saturates the RNN for good."""
    model = _spectral_rnn(3.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    norms = []
    with truth.recorded_updates(model, opt, lambda: norms.append(truth.grad_norms(model)["rnn"])) as updates:
        w, _ = fit(model, opt, classify_step(model, opt, _adding_batches(64, 32), F.mse_loss), 30)
    later = sorted(norms[1:])[len(norms[1:]) // 2]
    check(norms[0] > 1e3 * later, f"step-0 gradient {norms[0]:.3g} is not ≫ the later median {later:.3g}")
    check(all(math.isfinite(n) for n in norms), "the run went non-finite")
    return done(w, broken(Expect("exploding", ("rnn",), 0), forbid=("nonfinite",)),
                grad_norm_step0=norms[0], grad_norm_later_median=later, update_ratio_step0=updates[0]["rnn"])


@scenario("relu_mlp_exploding_init", expects=("exploding",))
def relu_mlp_exploding_init() -> Run:
    """12 ReLU layers initialised at 3/√fan_in (gain ≈ 2.1 per layer, He is √2): exploding from step 0. SGD with
    lr = 1e-7 keeps the run finite, so that the explosion is all there is to see."""
    model = models.mlp([64] + [32] * 12 + [10], "relu", init_std=3.0, gen=gen())
    opt = torch.optim.SGD(model.parameters(), lr=1e-7)
    batches = digit_batches()
    x0, y0 = next(digit_batches())
    gain0 = _activation_gain(model, x0, y0)
    w, losses = fit(model, opt, classify_step(model, opt, batches), 20)
    check(gain0 > 1e3, f"the gradient at fc1's output is only {gain0:.3g}× the one at the logits")
    check(all(math.isfinite(l) for l in losses), "the run went non-finite")
    return done(w, broken(Expect("exploding", step=0), forbid=("nonfinite", "vanishing")), activation_gain_step0=gain0)


@scenario("rnn_clipped_exploding", expects=("exploding",))
def rnn_clipped_exploding() -> Run:
    """Vanilla RNN with ρ(W_hh) = 3 trained with clip_grad_norm_(1): the raw gradient explodes on every step
    (norms ~1e5), clipping hides it from the optimizer."""
    model = _spectral_rnn(3.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = _adding_batches(48, 32)
    pre_clip = []

    def step(t: int) -> float:
        x, y = next(batches)
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        pre_clip.append(float(nn.utils.clip_grad_norm_(model.parameters(), 1.0)))
        opt.step()
        return loss.item()

    w, losses = fit(model, opt, step, 40, stats="full")
    big = sum(n > 100 for n in pre_clip)
    check(big >= len(pre_clip) // 2, f"the pre-clip norm exceeded 100 on only {big} of {len(pre_clip)} steps")
    return done(w, broken(Expect("exploding"), forbid=("nonfinite",)), steps_pre_clip_over_100=big,
                pre_clip_median=sorted(pre_clip)[len(pre_clip) // 2])


# ---- updates -----------------------------------------------------------------------------------------------------

def _large_updates_run(model: nn.Module, opt, step: STEP_FN, steps: int) -> Run:
    """Train under a watch; the truth: the layers whose step-0 update ‖Δθ‖/‖θ‖ (the zoo's own hooks) exceeds 1."""
    with truth.recorded_updates(model, opt) as updates:
        w, _ = fit(model, opt, step, steps)
    layers = tuple(n for n, r in updates[0].items() if r > 1.0)
    check(bool(layers), f"no layer's step-0 update exceeded its weights: {updates[0]}")
    return done(w, broken(Expect("large_updates", layers, 0)), layers_over_1=list(layers),
                max_update_ratio_step0=max(updates[0].values()))


@scenario("mlp_adam_lr5_large_updates", expects=("large_updates",))
def mlp_adam_lr5_large_updates() -> Run:
    """An MLP under Adam with lr = 5: the first update is many times the weights themselves."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=5.0)
    return _large_updates_run(model, opt, classify_step(model, opt, digit_batches()), 20)


@scenario("gpt2_adam_lr5_large_updates", expects=("large_updates",), needs=("transformers",))
def gpt2_adam_lr5_large_updates() -> Run:
    """Hugging Face GPT-2 tiny under Adam with lr = 5: the first update replaces the weights."""
    model = models.hf_gpt2()
    opt = torch.optim.Adam(model.parameters(), lr=5.0)
    return _large_updates_run(model, opt, lm_step(model, opt, data.text_batches(32, 16, gen()), hf=True), 10)


@scenario("stalled_lr_typo", expects=("stalled_updates",))
def stalled_lr_typo() -> Run:
    """An MLP whose first layer sits in a parameter group with lr = 1e-9 (a typo): fc1 never moves."""
    model = models.mlp([64, 64, 64, 10])
    rest = [p for n, p in model.named_parameters() if not n.startswith("fc1.")]
    opt = torch.optim.SGD([{"params": model.fc1.parameters(), "lr": 1e-9}, {"params": rest}], lr=0.1, momentum=0.9)
    with truth.recorded_updates(model, opt) as updates:
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 40)
    worst = max(u["fc1"] for u in updates)
    check(worst < 1e-6, f"fc1 moved by up to {worst:.2g} of its norm")
    check(min(u["fc2"] for u in updates) > 1e-4, "the other layers did not train")
    return done(w, broken(Expect("stalled_updates", ("fc1",), 0),
                          forbid=("nonfinite", "exploding", "vanishing", "dead_units", "saturation", "large_updates")),
                fc1_max_update_ratio=worst, **learned(losses, 0.8))


# ---- units -------------------------------------------------------------------------------------------------------

@scenario("dead_relu_lr1", expects=("dead_units",))
def dead_relu_lr1() -> Run:
    """A ReLU MLP under SGD with lr = 1.0 and momentum 0.9: large steps kill the units of fc2 and fc3."""
    model = models.mlp([64, 64, 64, 64, 10], "relu")
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    with truth.UnitFractions(model) as units:
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 60, stats="full", sample_every=5)
    dead = {k: sorted(v[-10:])[5] for k, v in units.dead.items()}
    layers = tuple(k for k, v in dead.items() if v > 0.5)
    check(bool(layers), f"no layer has more than half its units dead at the end: {dead}")
    check(all(math.isfinite(l) for l in losses), "the run went non-finite")
    return done(w, broken(Expect("dead_units", layers), forbid=("nonfinite",)), dead_fraction_end=dead)


@scenario("dead_relu_bias_init", expects=("dead_units",))
def dead_relu_bias_init() -> Run:
    """A ReLU MLP whose fc2 biases start at −5 on 80 % of its units: those units are dead from step 0 on."""
    model = models.mlp([64, 64, 64, 10], "relu")
    with torch.no_grad():
        model.fc2.bias[: int(0.8 * 64)] = -5.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with truth.UnitFractions(model) as units:
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 40, stats="full", sample_every=5)
    check(units.dead["fc2"][0] > 0.5, f"fc2 has only {units.dead['fc2'][0]:.0%} dead units at step 0")
    check(units.dead["fc1"][0] < 0.5, "fc1 is dead too")
    return done(w, broken(Expect("dead_units", ("fc2",), 0), forbid=("nonfinite", "exploding", "large_updates")),
                fc2_dead_step0=units.dead["fc2"][0], fc2_dead_end=units.dead["fc2"][-1])


@scenario("tanh_saturated_inputs", expects=("saturation",))
def tanh_saturated_inputs() -> Run:
    """A tanh MLP fed raw pixel values 0…16 (not centred or scaled): the first layer's units saturate."""
    model = models.mlp([64, 64, 64, 10], "tanh", init_std=1.0, gen=gen())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = data.digits(centre=False)
    batches = data.batches(x * 16, y, 64, gen())
    with truth.UnitFractions(model) as units:
        w, losses = fit(model, opt, classify_step(model, opt, batches), 30, stats="full")
    sat = units.saturated["fc1"][0]
    check(sat > 0.5, f"only {sat:.0%} of fc1's tanh inputs are saturated at step 0")
    return done(w, broken(Expect("saturation", ("fc1",), 0), forbid=("nonfinite", "exploding", "large_updates")),
                fc1_saturated_step0=sat)


# ---- non-finite --------------------------------------------------------------------------------------------------

def _nan_mlp() -> nn.Sequential:
    return models.mlp([64, 32, 32, 32, 32, 10], "relu")


def _inf_weight(layer: nn.Linear) -> None:
    """The fault: one weight of ``layer`` set to inf."""
    with torch.no_grad():
        layer.weight[0, 0] = math.inf


LOCATE = {"on_nonfinite": "locate"}  # per-module finite checks on every step, so the origin is exact

NONFINITE_ONLY = tuple(k for k in KINDS if k != "nonfinite")


def _traced_fault_run(model, opt, batches, fault_step: int, inject: Callable[[torch.Tensor], None], steps: int,
                      **watch_options) -> tuple[object, tuple[str, str] | None, list[float]]:
    """Train ``steps`` steps, calling ``inject(x)`` before the forward of step ``fault_step``; the zoo's
    :class:`~.truth.NonfiniteTrace` is armed on that step and returns the origin."""
    found: list[tuple[str, str] | None] = []

    with truth.NonfiniteTrace(model) as trace:
        def step(t: int) -> float:
            x, y = next(batches)
            trace.reset()
            if t == fault_step:
                inject(x)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if t == fault_step:
                found.append(trace.origin())
            opt.step()
            return loss.item()

        w, losses = fit(model, opt, step, steps, **watch_options)
    return w, found[0] if found else None, losses


@scenario("nan_from_weight", expects=("nonfinite",))
def nan_from_weight() -> Run:
    """fc4.weight set to inf before step 5 of an MLP: nonfinite, origin fc4, step 5."""
    model, fault = _nan_mlp(), 5
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    w, origin, losses = _traced_fault_run(model, opt, digit_batches(), fault, lambda x: _inf_weight(model.fc4),
                                          fault + 3)
    check(origin == ("fc4", "parameter"), f"the traced origin is {origin}")
    check(all(math.isfinite(l) for l in losses[:fault]), "non-finite before the fault")
    return done(w, broken(Expect("nonfinite", ("fc4",), fault), forbid=NONFINITE_ONLY), origin=origin[0])


@scenario("inf_from_input", expects=("nonfinite",))
def inf_from_input() -> Run:
    """An inf pixel in the batch of step 4: nonfinite, origin fc1 (the first layer whose output is non-finite)."""
    model, fault = _nan_mlp(), 4
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def inject(x):
        x[0, 10] = math.inf

    w, origin, _ = _traced_fault_run(model, opt, digit_batches(), fault, inject, fault + 3, **LOCATE)
    check(origin == ("fc1", "forward output"), f"the traced origin is {origin}")
    return done(w, broken(Expect("nonfinite", ("fc1",), fault), forbid=NONFINITE_ONLY), origin=origin[0])


@scenario("nan_from_backward_sqrt", expects=("nonfinite",))
def nan_from_backward_sqrt() -> Run:
    """A prototype layer computing √(Σ(h−p)²): at step 6 a prototype equals a feature vector, so the forward is
    finite but d√u/du at 0 makes the backward NaN; origin the prototype layer ``proto``."""
    model, fault = models.ProtoNet(gen=gen()), 6
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def inject(x):
        with torch.no_grad():
            model.proto.p[0] = model.features(x)[0]  # the same ops on the same input: bit-identical

    w, origin, _ = _traced_fault_run(model, opt, digit_batches(), fault, inject, fault + 3, **LOCATE)
    check(origin == ("proto", "backward input-gradient"), f"the traced origin is {origin}")
    return done(w, broken(Expect("nonfinite", ("proto",), fault), forbid=NONFINITE_ONLY), origin=origin[0])


@scenario("nan_tied_gpt2", expects=("nonfinite",), needs=("transformers",))
def nan_tied_gpt2() -> Run:
    """Hugging Face GPT-2 tiny (lm_head tied to wte) under SGD with lr = 30 until it goes non-finite: the origin is
    the first layer that made the non-finite value (traced by the zoo), never the tied lm_head/wte unless it is."""
    model = models.hf_gpt2(layers=4)
    opt = torch.optim.SGD(model.parameters(), lr=30.0)
    batches = data.text_batches(32, 16, gen())
    state = {"step": None, "origin": None}

    with truth.NonfiniteTrace(model) as trace:
        def step(t: int) -> float:
            seq = next(batches)
            trace.reset()
            opt.zero_grad()
            loss = models.lm_loss(model(seq[:, :-1]).logits, seq[:, 1:])
            loss.backward()
            if state["step"] is None and not truth.grads_finite(model):
                state["step"], state["origin"] = t, trace.origin()
            opt.step()
            return loss.item()

        with gw.watch(model, optimizer=opt, **LOCATE) as w:
            for t in range(40):
                step(t)
                if state["step"] is not None and t >= state["step"] + 2:
                    break
    check(state["step"] is not None, "GPT-2 did not go non-finite in 40 steps")
    origin = state["origin"][0]
    # the huge steps before the NaN may be reported as exploding or large updates: tolerated, not required
    forbid = ("vanishing", "saturation", "dead_units", "stalled_updates")
    return done(w, broken(Expect("nonfinite", (origin,), state["step"]), forbid=forbid),
                origin=origin, how=state["origin"][1], nonfinite_step=state["step"])


@scenario("nonfinite_raise", expects=("nonfinite",))
def nonfinite_raise() -> Run:
    """on_nonfinite='raise' with fc4.weight set to inf at step 3: the raising step is in the history and diagnosed."""
    model, fault = _nan_mlp(), 3
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    from gradwatch.probe.watcher import NonFiniteGradientError

    batches = digit_batches()
    w = gw.watch(model, optimizer=opt, on_nonfinite="raise")
    raised_at = None
    try:
        for t in range(fault + 3):
            x, y = next(batches)
            if t == fault:
                _inf_weight(model.fc4)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    except NonFiniteGradientError as exc:
        raised_at = exc.step
    finally:
        w.close()
    check(raised_at == fault, f"the watch raised at step {raised_at}, the fault was at {fault}")
    return done(w, broken(Expect("nonfinite", ("fc4",), fault), forbid=NONFINITE_ONLY), raised_at=raised_at)


@scenario("scaler_every_step_skipped", expects=("nonfinite",))
def scaler_every_step_skipped() -> Run:
    """GradScaler over a hand-written log-sigmoid BCE on raw pixels: log(0) = −inf on every batch, so the scaler
    skips every optimizer step. Not healthy: the gradients were non-finite from step 0."""
    model = models.mlp([64, 32, 1], "relu", init_std=8.0, gen=gen())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = _scaler()
    x, y = data.digits(centre=False)
    batches = data.batches(x * 16, (y < 5).float(), 64, gen())
    before = [p.detach().clone() for p in model.parameters()]
    skipped = []

    def step(t: int) -> float:
        xb, yb = next(batches)
        opt.zero_grad()
        p = torch.sigmoid(model(xb).squeeze(1))
        loss = -(yb * torch.log(p) + (1 - yb) * torch.log(1 - p)).mean()
        scaler.scale(loss).backward()
        scale = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        skipped.append(scaler.get_scale() < scale)
        return loss.item()

    w, losses = fit(model, opt, step, 20)
    check(all(skipped), f"the scaler stepped on {len(skipped) - sum(skipped)} of {len(skipped)} steps")
    check(all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the weights changed")
    return done(w, broken(Expect("nonfinite", step=0)), skipped_steps=sum(skipped), loss_step0=losses[0])

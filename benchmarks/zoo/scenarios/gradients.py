"""Vanishing and exploding gradients: deep sigmoid and tanh stacks (one recovering), RNNs with ρ(W_hh) = 3, a ReLU
stack initialised too large."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import data, models, truth
from ..label import Expect, Run, broken
from ..loop import classify_step, clipped_step, digit_batches, done, fit, gen, learned
from ..registry import scenario
from ..truth import check


VANISHED = 1e-2  # the gradient reaching the first layer below this fraction of the output's: vanished


@scenario("sigmoid_mlp_vanishing", expects=("vanishing",))
def sigmoid_mlp_vanishing() -> Run:
    """8 hidden sigmoid layers (PyTorch default init), SGD: the gradient vanishes toward the input from step 0."""
    model = models.mlp([64] + [32] * 8 + [10], "sigmoid")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ratios = []
    with truth.recorded_updates(model, opt, lambda: ratios.append(truth.relative_ratio(model, "fc1", "fc9"))):
        w, _ = fit(model, opt, classify_step(model, opt, digit_batches()), 60, stats="full")
    check(max(ratios) < 1e-2, f"fc1's relative gradient reached {max(ratios):.2g} of fc9's")
    return done(
        w,
        broken(Expect("vanishing", ("fc1",), 0), forbid=("nonfinite", "exploding", "dead_units", "large_updates")),
        fc1_over_fc9_step0=ratios[0],
        fc1_over_fc9_max=max(ratios),
    )


@scenario("sigmoid_cnn_vanishing", expects=("vanishing",))
def sigmoid_cnn_vanishing() -> Run:
    """8 sigmoid 3×3 convolutions (PyTorch default init) on digit images, SGD: the gradient vanishes toward conv1."""
    model = models.cnn(8, 8, "sigmoid")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data.digit_images(8)
    with truth.OutputGradNorms(model, ["conv1", "fc"]) as grads:
        w, _ = fit(model, opt, classify_step(model, opt, data.batches(x, y, 64, gen())), 40, stats="full")
    ratios = grads.ratio("conv1", "fc")
    check(max(ratios) < VANISHED, f"the gradient at conv1's output reached {max(ratios):.2g} of the logits'")
    return done(
        w,
        broken(Expect("vanishing", ("conv1",), 0), forbid=("nonfinite", "exploding", "dead_units", "large_updates")),
        conv1_over_logits_step0=ratios[0],
        conv1_over_logits_max=max(ratios),
    )


@scenario("tanh16_vanishing_recovers", expects=("vanishing",))
def tanh16_vanishing_recovers() -> Run:
    """16 tanh layers initialised small (0.6/√fan_in): the gradient reaching fc1 is ~3e-4 of the logits' at init;
    Adam repairs it in about 10 steps (then ~1), so the vanishing is an episode that recovered."""
    model = models.mlp([64] + [32] * 16 + [10], "tanh", init_std=0.6, gen=gen())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gains = []  # ‖∂L/∂(fc1 output)‖ / ‖∂L/∂logits‖ on each step's batch, by autograd
    step = classify_step(
        model, opt, digit_batches(), before=lambda t, x, y: gains.append(truth.activation_gain(model, x, y))
    )
    w, losses = fit(model, opt, step, 100, stats="full")
    low = [t for t, g in enumerate(gains) if g < VANISHED]
    recovered = next((t for t in range(len(gains)) if all(g >= VANISHED for g in gains[t:])), None)
    check(gains[0] < VANISHED, f"the gradient at fc1's output is {gains[0]:.2g}× the logits' at step 0")
    check(recovered is not None and recovered <= 20, f"no lasting recovery by step 20 (gains {gains[:5]}…)")
    return done(
        w,
        broken(
            Expect("vanishing", ("fc1",), 0, evidence=("steps", "recovered_at")),
            forbid=("nonfinite", "exploding", "dead_units"),
        ),
        vanishing_steps=low,
        recovered_at=recovered,
        gain_step0=gains[0],
        **learned(losses, 0.85),
    )


def _spectral_rnn(rho: float, hidden: int = 64) -> models.SequenceRegressor:
    model = models.SequenceRegressor(2, hidden)
    with torch.no_grad():
        w = torch.randn(hidden, hidden, generator=gen(1)) / hidden**0.5
        w *= rho / torch.linalg.eigvals(w).abs().max()
        model.rnn.weight_hh_l0.copy_(w)
    return model


@scenario("rnn_rho3_step0_explosion", expects=("exploding",))
def rnn_rho3_step0_explosion() -> Run:
    """Vanilla RNN (hidden 64) with ρ(W_hh) = 3 on the adding problem, T = 64: the chaotic regime gives a catastrophic
    gradient at step 0; the SGD step it causes saturates the RNN for good."""
    model = _spectral_rnn(3.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    norms = []
    with truth.recorded_updates(model, opt, lambda: norms.append(truth.grad_norms(model)["rnn"])) as updates:
        w, _ = fit(model, opt, classify_step(model, opt, data.adding_batches(64, 32), F.mse_loss), 30)
    later = sorted(norms[1:])[len(norms[1:]) // 2]
    check(norms[0] > 1e3 * later, f"step-0 gradient {norms[0]:.3g} is not ≫ the later median {later:.3g}")
    check(all(math.isfinite(n) for n in norms), "the run went non-finite")
    return done(
        w,
        broken(Expect("exploding", ("rnn",), 0), forbid=("nonfinite",)),
        grad_norm_step0=norms[0],
        grad_norm_later_median=later,
        update_ratio_step0=updates[0]["rnn"],
    )


@scenario("relu_mlp_exploding_init", expects=("exploding",))
def relu_mlp_exploding_init() -> Run:
    """12 ReLU layers initialised at 3/√fan_in (gain ≈ 2.1 per layer, He is √2): exploding from step 0. SGD with
    lr = 1e-7 keeps the run finite, so that the explosion is all there is to see. Truth: the gradient at fc1's
    output over the one at the logits (autograd), and each layer's ‖g‖/‖θ‖ against the same net at He init."""
    widths = [64] + [32] * 12 + [10]
    model = models.mlp(widths, "relu", init_std=3.0, gen=gen())
    he = models.mlp(widths, "relu", init_std=2**0.5, gen=gen())
    opt = torch.optim.SGD(model.parameters(), lr=1e-7)
    x0, y0 = next(digit_batches())  # the first batch the run will see
    gain0 = truth.activation_gain(model, x0, y0)
    F.cross_entropy(he(x0), y0).backward()
    he_rel = sorted(truth.relative_grads(he).values())
    rel = []
    with truth.recorded_updates(model, opt, lambda: rel.append(sorted(truth.relative_grads(model).values()))):
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 20, stats="full")
    check(gain0 > 1e3, f"the gradient at fc1's output is only {gain0:.3g}× the one at the logits")
    check(rel[0][0] > 100 * he_rel[-1], "some layer's ‖g‖/‖θ‖ at step 0 is within 100× of the He-init net's")
    check(all(math.isfinite(l) for l in losses), "the run went non-finite")
    return done(
        w,
        broken(Expect("exploding", step=0), forbid=("nonfinite", "vanishing")),
        activation_gain_step0=gain0,
        relative_grad_step0_min=rel[0][0],
        he_init_relative_grad_max=he_rel[-1],
    )


@scenario("rnn_clipped_exploding", expects=("exploding",))
def rnn_clipped_exploding() -> Run:
    """Vanilla RNN with ρ(W_hh) = 3 trained with clip_grad_norm_(1): the raw gradient explodes on every step
    (norms ~1e5), clipping hides it from the optimizer."""
    model = _spectral_rnn(3.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = data.adding_batches(48, 32)
    pre_clip: list[float] = []
    w, losses = fit(model, opt, clipped_step(model, opt, batches, F.mse_loss, 1.0, pre_clip), 40, stats="full")
    big = sum(n > 100 for n in pre_clip)
    check(big >= len(pre_clip) // 2, f"the pre-clip norm exceeded 100 on only {big} of {len(pre_clip)} steps")
    return done(
        w,
        broken(Expect("exploding"), forbid=("nonfinite",)),
        steps_pre_clip_over_100=big,
        pre_clip_median=sorted(pre_clip)[len(pre_clip) // 2],
    )


@scenario("spike_from_bad_batch", expects=("exploding",))
def spike_from_bad_batch() -> Run:
    """A healthy MLP under Adam meets one corrupted batch at step 30 (its pixels ×1000, a unit bug in one shard):
    a one-step gradient spike, dated, in the layers it hit. Training goes on, slowed: the spike also fills Adam's
    second-moment estimate, which shrinks the following steps."""
    model, fault = models.mlp([64, 64, 64, 10]), 30
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def corrupt(t, x, y):
        if t == fault:
            x.mul_(1000.0)

    norms = []
    with truth.recorded_updates(model, opt, lambda: norms.append(truth.grad_norms(model))):
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches(), before=corrupt), 60)
    median = {n: sorted(g[n] for g in norms)[len(norms) // 2] for n in norms[0]}
    spike = {n: norms[fault][n] / median[n] for n in median}
    layers = tuple(n for n, f in spike.items() if f > 100)
    others = max(norms[t][n] / median[n] for t in range(len(norms)) if t != fault for n in median)
    check(bool(layers), f"no layer's gradient at step {fault} exceeded 100× its median: {spike}")
    check(others < 20, f"another step's gradient reached {others:.3g}× its median")
    check(all(math.isfinite(l) for l in losses), "the run went non-finite")
    return done(
        w,
        broken(Expect("exploding", layers, fault), forbid=("nonfinite", "vanishing", "dead_units")),
        spike_over_median=spike,
        max_other_step_over_median=others,
        loss_before=losses[fault - 1],
        loss_end=losses[-1],
    )

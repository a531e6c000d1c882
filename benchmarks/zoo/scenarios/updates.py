"""Updates out of scale: Adam with lr = 5 (updates larger than the weights) and a layer frozen by a tiny lr."""

from __future__ import annotations

import torch
from torch import nn

from .. import data, models, truth
from ..label import Expect, Run, broken
from ..loop import STEP_FN, classify_step, digit_batches, done, fit, gen, learned, lm_step
from ..registry import scenario
from ..truth import check


def _large_updates_run(model: nn.Module, opt, step: STEP_FN, steps: int) -> Run:
    """Train under a watch; the truth: the layers whose step-0 update ‖Δθ‖/‖θ‖ (the zoo's own hooks) exceeds 1."""
    with truth.recorded_updates(model, opt) as updates:
        w, _ = fit(model, opt, step, steps)
    layers = tuple(n for n, r in updates[0].items() if r > 1.0)
    check(bool(layers), f"no layer's step-0 update exceeded its weights: {updates[0]}")
    return done(
        w,
        broken(Expect("large_updates", layers, 0)),
        layers_over_1=list(layers),
        max_update_ratio_step0=max(updates[0].values()),
    )


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


@scenario("mlp_sgd_lr50_large_updates", expects=("large_updates",))
def mlp_sgd_lr50_large_updates() -> Run:
    """An MLP under plain SGD with lr = 50: the step-0 update lr·‖g‖ is larger than the weights."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=50.0)
    return _large_updates_run(model, opt, classify_step(model, opt, digit_batches()), 5)


@scenario("adam_lr_1e8_stalled", expects=("stalled_updates",))
def adam_lr_1e8_stalled() -> Run:
    """An MLP under Adam with lr = 1e-8 (a scale forgotten): every layer moves by ~1e-7 of its norm per step."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-8)
    with truth.recorded_updates(model, opt) as updates:
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 30)
    worst = {n: max(u[n] for u in updates) for n in updates[0]}
    check(max(worst.values()) < 1e-6, f"some layer moved by more than 1e-6 of its norm: {worst}")
    check(not truth.falls(losses, 0.95), "the loss fell")
    return done(
        w,
        broken(
            Expect("stalled_updates", tuple(worst), 0),
            forbid=("nonfinite", "exploding", "vanishing", "dead_units", "saturation", "large_updates"),
        ),
        max_update_ratio=max(worst.values()),
    )


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
    return done(
        w,
        broken(
            Expect("stalled_updates", ("fc1",), 0),
            forbid=("nonfinite", "exploding", "vanishing", "dead_units", "saturation", "large_updates"),
        ),
        fc1_max_update_ratio=worst,
        **learned(losses, 0.8),
    )

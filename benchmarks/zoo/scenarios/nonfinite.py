"""Non-finite values from a weight, an input, a backward-only NaN, a tied-embedding GPT-2 that blows up; the
``on_nonfinite="raise"`` step; a GradScaler that skips every step."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import gradwatch as gw

from .. import data, models, truth
from ..label import KINDS, Expect, Run, broken
from ..loop import cpu_grad_scaler, digit_batches, done, fit, gen, scaled_backward_and_step
from ..registry import scenario
from ..truth import check


def _nan_mlp() -> nn.Sequential:
    return models.mlp([64, 32, 32, 32, 32, 10], "relu")


def _inf_weight(layer: nn.Linear) -> None:
    """The fault: one weight of ``layer`` set to inf."""
    with torch.no_grad():
        layer.weight[0, 0] = math.inf


LOCATE = {"on_nonfinite": "locate"}  # per-module finite checks on every step, so the origin is exact

NONFINITE_ONLY = tuple(k for k in KINDS if k != "nonfinite")


def _traced_fault_run(
    model, opt, batches, fault_step: int, inject: Callable[[torch.Tensor], None], steps: int, **watch_options
) -> tuple[object, tuple[str, str] | None, list[float]]:
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

    w, origin, losses = _traced_fault_run(
        model, opt, digit_batches(), fault, lambda x: _inf_weight(model.fc4), fault + 3
    )
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
                # the largest weight then: finite, though its float32 norm may already overflow
                state["max_abs_weight"] = max(float(p.detach().abs().max()) for p in model.parameters())
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
    return done(
        w,
        broken(Expect("nonfinite", (origin,), state["step"]), forbid=forbid),
        origin=origin,
        how=state["origin"][1],
        nonfinite_step=state["step"],
        max_abs_weight_at_that_step=state["max_abs_weight"],
    )


@scenario("nonfinite_raise", expects=("nonfinite",))
def nonfinite_raise() -> Run:
    """on_nonfinite='raise' with fc4.weight set to inf at step 3: the raising step is in the history and diagnosed."""
    model, fault = _nan_mlp(), 3
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

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
    except FloatingPointError as exc:  # gradwatch's NonFiniteGradientError, with the step it raised at
        raised_at = getattr(exc, "step", None)
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
    scaler = cpu_grad_scaler()
    x, y = data.digits(centre=False)
    batches = data.batches(x * 16, (y < 5).float(), 64, gen())
    before = [p.detach().clone() for p in model.parameters()]
    skipped = []

    def step(t: int) -> float:
        xb, yb = next(batches)
        opt.zero_grad()
        p = torch.sigmoid(model(xb).squeeze(1))
        loss = -(yb * torch.log(p) + (1 - yb) * torch.log(1 - p)).mean()
        scaled_backward_and_step(loss, opt, scaler, skipped)
        return loss.item()

    w, losses = fit(model, opt, step, 20)
    check(all(skipped), f"the scaler stepped on {len(skipped) - sum(skipped)} of {len(skipped)} steps")
    check(all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the weights changed")
    return done(w, broken(Expect("nonfinite", step=0)), skipped_steps=sum(skipped), loss_step0=losses[0])

"""Units: ReLUs killed by large steps or by their biases, tanh units saturated by unscaled inputs."""

from __future__ import annotations

import math

import torch

from .. import data, models, truth
from ..label import Expect, Run, broken
from ..loop import classify_step, digit_batches, done, fit, gen
from ..registry import scenario
from ..truth import check


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
    return done(
        w,
        broken(Expect("dead_units", ("fc2",), 0), forbid=("nonfinite", "exploding", "large_updates")),
        fc2_dead_step0=units.dead["fc2"][0],
        fc2_dead_end=units.dead["fc2"][-1],
    )


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
    return done(
        w,
        broken(Expect("saturation", ("fc1",), 0), forbid=("nonfinite", "exploding", "large_updates")),
        fc1_saturated_step0=sat,
    )


@scenario("sigmoid_large_init_saturation", expects=("saturation",))
def sigmoid_large_init_saturation() -> Run:
    """A sigmoid MLP initialised at 25/√fan_in on centred digits: most pre-activations sit where σ' ≈ 0."""
    model = models.mlp([64, 64, 64, 64, 10], "sigmoid", init_std=25.0, gen=gen())
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with truth.UnitFractions(model) as units:
        w, _ = fit(model, opt, classify_step(model, opt, digit_batches()), 30, stats="full")
    step0 = {k: v[0] for k, v in units.saturated.items()}
    layers = tuple(k for k, v in step0.items() if v > 0.5)
    check(bool(layers), f"no layer has more than half its sigmoid inputs saturated at step 0: {step0}")
    return done(
        w,
        broken(Expect("saturation", layers, 0), forbid=("nonfinite", "large_updates", "dead_units")),
        saturated_step0=step0,
    )

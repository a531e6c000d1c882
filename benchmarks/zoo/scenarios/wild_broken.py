"""Broken runs of architectures the rules were not written for: dead units behind ReLUs the hooks cannot attribute
(registered after, shared, functional), in a U-Net and in a sparse recommender; vanishing in a GAN's generator
and a deep graph net; saturation in a graph net; spikes, large updates, stalled adapters and non-finite values in
U-Nets, LoRA, LayerScale, GANs and recommenders. Every label is measured on the run itself."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import truth
from ..label import Expect, Run, broken
from ..loop import classify_step, digit_batches, done, fit, gen
from ..registry import scenario
from ..truth import check
from . import wild_loops as wl
from . import wild_models as wm

HELD = "held-out"
NOT_DEAD = ("nonfinite", "exploding", "large_updates", "vanishing")


# ---- dead units, whatever applies the ReLU -----------------------------------------------------------------------


def _dead_relu_net(kind: str) -> Run:
    model = wm.RELU_NETS[kind]()
    wl.kill_units(model.fc2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with wl.PreactDead(model, ["fc1", "fc2", "fc3"]) as units:
        w, _ = fit(model, opt, classify_step(model, opt, digit_batches()), 40, stats="full")
    facts = wl.dead_at_start(units, "fc2", ["fc1", "fc3"])
    return done(w, broken(Expect("dead_units", ("fc2",), 0), forbid=NOT_DEAD), **facts)


@scenario("dead_relu_shared_module", expects=("dead_units",))
def dead_relu_shared_module() -> Run:
    """One shared self.relu after fc1, fc2, fc3; fc2's biases at −5 on 80 % of its units: fc2 dead from step 0."""
    return _dead_relu_net("shared")


@scenario("dead_relu_functional", expects=("dead_units",), split=HELD)
def dead_relu_functional() -> Run:
    """F.relu in forward; fc2's biases at −5 on 80 % of its units: fc2 dead from step 0."""
    return _dead_relu_net("functional")


@scenario("dead_relu_registered_after", expects=("dead_units",), split=HELD)
def dead_relu_registered_after() -> Run:
    """ReLU modules registered after all Linear layers; fc2's biases at −5 on 80 % of its units: fc2 dead."""
    return _dead_relu_net("after")


@scenario("dead_relu_killed_between_samples", expects=("dead_units",), split=HELD)
def dead_relu_killed_between_samples() -> Run:
    """The registered-after ReLU net, stats="full" with sample_every=10: fc3's biases are set to −20 on 80 % of its
    units before step 7, between two sampled steps. Truth: the first step whose fc3 has more than half its units
    ≤ 0 for the whole batch (the zoo's hook on fc3's output, every step)."""
    model = wm.ReluAfterNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def fault(t, x, y):
        if t == 7:
            wl.kill_units(model.fc3, bias=-20.0)

    with wl.PreactDead(model, ["fc1", "fc2", "fc3"]) as units:
        w, _ = fit(
            model, opt, classify_step(model, opt, digit_batches(), before=fault), 40, stats="full", sample_every=10
        )
    first = next(t for t, v in enumerate(units.dead["fc3"]) if v > 0.5)
    check(max(units.dead["fc2"]) < 0.5, "fc2 died too")
    return done(w, broken(Expect("dead_units", ("fc3",), first), forbid=NOT_DEAD), first_dead_step=first)


@scenario("unet_dead_channels", expects=("dead_units",), split=HELD)
def unet_dead_channels() -> Run:
    """The U-Net with enc2's biases at −20 on 80 % of its channels (ReLU after it): those channels are dead."""
    model = wm.UNet()
    wl.kill_units(model.enc2, bias=-20.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with wl.PreactDead(model, ["enc1", "enc2", "dec1"]) as units:
        w, _ = fit(model, opt, wl.steps_of(model, [opt], wl.segmentation_batches(), wl.seg_loss()), 40, stats="full")
    facts = wl.dead_at_start(units, "enc2", ["enc1", "dec1"])
    return done(w, broken(Expect("dead_units", ("enc2",), 0), forbid=NOT_DEAD), **facts)


@scenario("recommender_dead_hidden", expects=("dead_units",), split=HELD)
def recommender_dead_hidden() -> Run:
    """The sparse-embedding recommender with fc2's biases at −20 on 80 % of its units: fc2 dead from step 0 (the
    sparse embeddings measured beside it)."""
    model = wm.Recommender()
    wl.kill_units(model.fc2, bias=-20.0)
    sparse = torch.optim.SparseAdam([model.user.weight, model.item.weight], lr=1e-2)
    dense = torch.optim.Adam([p for n, p in model.named_parameters() if not n.startswith(("user", "item"))], lr=1e-3)
    with wl.PreactDead(model, ["fc1", "fc2"]) as units:
        w, _ = fit(
            model,
            [sparse, dense],
            wl.steps_of(lambda ui: model(*ui), [sparse, dense], wl.rating_batches(), F.mse_loss),
            40,
            stats="full",
        )
    facts = wl.dead_at_start(units, "fc2", ["fc1"])
    return done(w, broken(Expect("dead_units", ("fc2",), 0), forbid=NOT_DEAD), **facts)


@scenario("gcn_dead_layer", expects=("dead_units",), split=HELD)
def gcn_dead_layer() -> Run:
    """A ReLU graph net whose second layer's biases are −20 on 80 % of its units: dead from step 0."""
    adj, x, y = wm.block_graph()
    model = wm.GCN(adj, [16, 32, 32, 3])
    wl.kill_units(model.layers[2], bias=-20.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    units = {}

    def measure(t, x_, y_):  # Â·(h W + b) ≤ 0 for every node: dead after the ReLU
        with torch.no_grad():
            h1 = torch.relu(adj @ model.layers[0](x_))
            units.setdefault("layers.0", []).append(float(((adj @ model.layers[0](x_)) <= 0).all(0).float().mean()))
            units.setdefault("layers.2", []).append(float(((adj @ model.layers[2](h1)) <= 0).all(0).float().mean()))

    w, _ = fit(model, opt, classify_step(model, opt, wl.graph_batches(x, y), before=measure), 40, stats="full")
    check(units["layers.2"][0] > 0.5, f"layers.2 has {units['layers.2'][0]:.0%} dead units at step 0")
    check(units["layers.0"][0] < 0.5, "layers.0 is dead too")
    return done(w, broken(Expect("dead_units", ("layers.2",), 0), forbid=NOT_DEAD), dead_step0=units)


# ---- vanishing and saturation --------------------------------------------------------------------------------


@scenario("gan_generator_vanishing", expects=("vanishing",), split=HELD)
def gan_generator_vanishing() -> Run:
    """A GAN whose generator is 8 sigmoid layers (SGD): the generator's gradient vanishes toward its input (G.0),
    the discriminator is fine. Truth: G.0's ‖g‖/‖θ‖ over the generator's last layer's, from autograd at each
    generator step."""
    gan = wm.GAN(wm.chain([4] + [32] * 8 + [2], "sigmoid"), wm.chain([2, 32, 32, 1], "leaky"))
    opt_d = torch.optim.SGD(gan.D.parameters(), lr=0.05)
    opt_g = torch.optim.SGD(gan.G.parameters(), lr=0.05)
    ratios = []
    with truth.recorded_updates(gan.G, opt_g, lambda: ratios.append(truth.relative_ratio(gan.G, "0", "16"))):
        w, _ = fit(gan, [opt_d, opt_g], wl.gan_step(gan, opt_d, opt_g, wl.gan_data()), 40, stats="full")
    check(max(ratios) < 1e-2, f"G.0's relative gradient reached {max(ratios):.2g} of G.16's")
    return done(
        w,
        broken(Expect("vanishing", ("G.0",), 0), forbid=("nonfinite", "exploding", "large_updates")),
        g0_over_glast_max=max(ratios),
    )


@scenario("gcn_sigmoid_vanishing", expects=("vanishing",), split=HELD)
def gcn_sigmoid_vanishing() -> Run:
    """An 8-layer sigmoid graph net (SGD): the gradient vanishes toward layers.0."""
    adj, x, y = wm.block_graph()
    model = wm.GCN(adj, [16] + [32] * 8 + [3], "sigmoid")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ratios = []
    with truth.recorded_updates(
        model, opt, lambda: ratios.append(truth.relative_ratio(model, "layers.0", "layers.16"))
    ):
        w, _ = fit(model, opt, classify_step(model, opt, wl.graph_batches(x, y)), 40, stats="full")
    check(max(ratios) < 1e-2, f"layers.0's relative gradient reached {max(ratios):.2g} of the last layer's")
    return done(
        w,
        broken(Expect("vanishing", ("layers.0",), 0), forbid=("nonfinite", "exploding", "large_updates", "dead_units")),
        ratio_max=max(ratios),
    )


@scenario("gcn_tanh_saturation", expects=("saturation",), split=HELD)
def gcn_tanh_saturation() -> Run:
    """A tanh graph net initialised at 4/√fan_in fed features ×8: the first layer's tanh inputs saturate."""
    adj, x, y = wm.block_graph()
    model = wm.GCN(adj, [16, 32, 32, 3], "tanh", init_std=4.0, gen=gen())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with truth.UnitFractions(model.layers) as units:
        w, _ = fit(model, opt, classify_step(model, opt, wl.graph_batches(8 * x, y)), 30, stats="full")
    sat = units.saturated["0"][0]
    check(sat > 0.5, f"only {sat:.0%} of layers.0's tanh inputs are saturated at step 0")
    return done(
        w, broken(Expect("saturation", ("layers.0",), 0), forbid=("nonfinite", "large_updates")), saturated_step0=sat
    )


@scenario("unet_sigmoid_saturation", expects=("saturation",), split=HELD)
def unet_sigmoid_saturation() -> Run:
    """The U-Net with sigmoid activations, its first convolution's weights ×100: enc1's sigmoid inputs saturate."""
    model = wm.UNet(act="sigmoid")
    with torch.no_grad():
        model.enc1.weight.mul_(100.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sat = []

    def measure(t, x, y):
        with torch.no_grad():
            s = torch.sigmoid(model.enc1(x))
            sat.append(float((s * (1 - s) < 0.0025).float().mean()))

    w, _ = fit(
        model,
        opt,
        wl.steps_of(model, [opt], wl.segmentation_batches(), wl.seg_loss(), before=measure),
        30,
        stats="full",
    )
    check(sat[0] > 0.5, f"only {sat[0]:.0%} of enc1's sigmoid inputs are saturated at step 0")
    return done(
        w, broken(Expect("saturation", ("enc1",), 0), forbid=("nonfinite", "large_updates")), saturated_step0=sat[0]
    )


# ---- exploding -----------------------------------------------------------------------------------------------


def _spike_run(model, opts, model_call, batches, loss_fn, fault: int, corrupt, steps: int = 50, **options) -> Run:
    norms = []
    with truth.recorded_updates(model, opts[-1], lambda: norms.append(truth.grad_norms(model))):
        w, losses = fit(
            model,
            opts if len(opts) > 1 else opts[0],
            wl.steps_of(model_call, opts, batches, loss_fn, before=corrupt),
            steps,
            **options,
        )
    layers, others = wl.spike_truth(norms, fault)
    wl.finite_losses(losses)
    return done(
        w,
        broken(Expect("exploding", layers, fault), forbid=("nonfinite", "vanishing", "dead_units")),
        spike_layers=list(layers),
        max_other_over_median=others,
    )


@scenario("unet_bad_batch_spike", expects=("exploding",), split=HELD)
def unet_bad_batch_spike() -> Run:
    """The U-Net under Adam meets one batch whose images are ×1e4 at step 25: a gradient spike, dated."""
    model = wm.UNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def corrupt(t, x, y):
        if t == 25:
            x.mul_(1e4)

    return _spike_run(model, [opt], model, wl.segmentation_batches(), wl.seg_loss(), 25, corrupt)


@scenario("recommender_bad_ratings_spike", expects=("exploding",), split=HELD)
def recommender_bad_ratings_spike() -> Run:
    """The sparse recommender meets one batch of ratings ×1e4 (a unit bug) at step 30: a gradient spike."""
    model = wm.Recommender()
    sparse = torch.optim.SparseAdam([model.user.weight, model.item.weight], lr=1e-2)
    dense = torch.optim.Adam([p for n, p in model.named_parameters() if not n.startswith(("user", "item"))], lr=1e-3)

    def corrupt(t, x, y):
        if t == 30:
            y.mul_(1e4)

    return _spike_run(model, [sparse, dense], lambda ui: model(*ui), wl.rating_batches(), F.mse_loss, 30, corrupt)


@scenario("gcn_relu_exploding_init", expects=("exploding",), split=HELD)
def gcn_relu_exploding_init() -> Run:
    """A 10-layer ReLU graph net initialised at 4/√fan_in, SGD with lr 1e-9 (finite): exploding from step 0.
    Truth: every layer's ‖g‖/‖θ‖ at step 0 is over 100× the largest of the same net at He init."""
    adj, x, y = wm.block_graph()
    widths = [16] + [32] * 10 + [3]
    model = wm.GCN(adj, widths, "relu", init_std=4.0, gen=gen())
    he = wm.GCN(adj, widths, "relu", init_std=2**0.5, gen=gen())
    F.cross_entropy(he(x), y).backward()
    he_max = max(truth.relative_grads(he).values())
    opt = torch.optim.SGD(model.parameters(), lr=1e-9)
    rel = []
    with truth.recorded_updates(model, opt, lambda: rel.append(min(truth.relative_grads(model).values()))):
        w, losses = fit(model, opt, classify_step(model, opt, wl.graph_batches(x, y)), 20)
    check(rel[0] > 100 * he_max, f"the smallest ‖g‖/‖θ‖ at step 0, {rel[0]:.3g}, is within 100× of He's {he_max:.3g}")
    wl.finite_losses(losses)
    return done(
        w,
        broken(Expect("exploding", step=0), forbid=("nonfinite", "vanishing")),
        min_rel_step0=rel[0],
        he_max_rel=he_max,
    )


# ---- updates -------------------------------------------------------------------------------------------------


def _large_run(model, opt, step, steps: int = 10) -> Run:
    with truth.recorded_updates(model, opt) as updates:
        w, _ = fit(model, opt, step, steps)
    layers = wl.over_one(updates[0])
    return done(w, broken(Expect("large_updates", layers, 0)), layers_over_1=list(layers))


@scenario("lora_adam_lr5_large_updates", expects=("large_updates",), split=HELD)
def lora_adam_lr5_large_updates() -> Run:
    """LoRA adapters under Adam with lr = 5: the first update of the adapters and head is many times their norm."""
    model = wm.LoRANet()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5.0)
    return _large_run(model, opt, classify_step(model, opt, digit_batches()))


@scenario("layerscale_adam_lr5_large_updates", expects=("large_updates",), split=HELD)
def layerscale_adam_lr5_large_updates() -> Run:
    """The LayerScale net (γ = 1e-5) under Adam with lr = 5: every layer's first update exceeds its weights."""
    model = wm.LayerScaleNet(1e-5)
    opt = torch.optim.Adam(model.parameters(), lr=5.0)
    return _large_run(model, opt, classify_step(model, opt, digit_batches()))


@scenario("unet_sgd_lr100_large_updates", expects=("large_updates",), split=HELD)
def unet_sgd_lr100_large_updates() -> Run:
    """The U-Net under plain SGD with lr = 100: the first update is larger than the weights."""
    model = wm.UNet()
    opt = torch.optim.SGD(model.parameters(), lr=100.0)
    return _large_run(model, opt, wl.steps_of(model, [opt], wl.segmentation_batches(), wl.seg_loss()), 5)


def _stalled_truth(updates, layers: list[str]) -> float:
    worst = max(u[n] for u in updates for n in layers)
    check(worst < 1e-6, f"{layers} moved by up to {worst:.2g} of their norm")
    return worst


@scenario("lora_lr_typo_stalled", expects=("stalled_updates",), split=HELD)
def lora_lr_typo_stalled() -> Run:
    """LoRA adapters in a parameter group with lr = 1e-9 (a typo), the head at 3e-3: the adapters never move."""
    model = wm.LoRANet()
    adapters = [p for n, p in model.named_parameters() if "lora" in n]
    opt = torch.optim.Adam([{"params": adapters, "lr": 1e-9}, {"params": model.head.parameters()}], lr=3e-3)
    with truth.recorded_updates(model, opt) as updates:
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 40)
    worst = _stalled_truth(updates, ["fc1", "fc2"])
    return done(
        w,
        broken(
            Expect("stalled_updates", ("fc1", "fc2"), 0),
            forbid=("nonfinite", "exploding", "vanishing", "large_updates"),
        ),
        adapters_max_update_ratio=worst,
        loss_start=losses[0],
        loss_end=losses[-1],
    )


@scenario("gcn_lr_typo_stalled", expects=("stalled_updates",), split=HELD)
def gcn_lr_typo_stalled() -> Run:
    """A graph net whose first layer sits in a parameter group with lr = 1e-10 under SGD: layers.0 never moves."""
    adj, x, y = wm.block_graph()
    model = wm.GCN(adj, [16, 32, 32, 3])
    first = list(model.layers[0].parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("layers.0.")]
    opt = torch.optim.SGD([{"params": first, "lr": 1e-10}, {"params": rest}], lr=0.1, momentum=0.9)
    with truth.recorded_updates(model, opt) as updates:
        w, losses = fit(model, opt, classify_step(model, opt, wl.graph_batches(x, y)), 40)
    worst = _stalled_truth(updates, ["layers.0"])
    return done(
        w,
        broken(
            Expect("stalled_updates", ("layers.0",), 0), forbid=("nonfinite", "exploding", "vanishing", "large_updates")
        ),
        first_max_update_ratio=worst,
    )


# ---- non-finite ----------------------------------------------------------------------------------------------


def _traced(model, opts, model_call, batches, loss_fn, fault: int, inject, steps: int = 20, **options):
    found = []
    with truth.NonfiniteTrace(model) as trace:

        def before(t, x, y):
            trace.reset()
            if t == fault:
                inject(x)

        step = wl.steps_of(model_call, opts, batches, loss_fn, before=before)
        handle = opts[0].register_step_pre_hook(
            lambda *_: found.append(trace.origin()) if not found and trace.origin() is not None else None
        )
        try:
            w, _ = fit(model, opts if len(opts) > 1 else opts[0], step, steps, on_nonfinite="locate", **options)
        finally:
            handle.remove()
    check(bool(found), "no step was non-finite")
    return w, found[0]


@scenario("diffusion_inf_weight", expects=("nonfinite",), split=HELD)
def diffusion_inf_weight() -> Run:
    """The diffusion U-Net with one weight of dec1 set to inf before step 8: the origin is dec1 at step 8."""
    model = wm.UNet(act="silu", time=True, norm=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def inject(x):
        with torch.no_grad():
            model.dec1.weight[0, 0, 0, 0] = math.inf

    w, (origin, how) = _traced(model, [opt], lambda xt: model(*xt), wl.diffusion_batches(), F.mse_loss, 8, inject)
    return done(w, broken(Expect("nonfinite", (origin,), 8)), origin=origin, traced_by=how)


@scenario("gan_inf_real_batch", expects=("nonfinite",), split=HELD)
def gan_inf_real_batch() -> Run:
    """A GAN whose real batch holds an inf at step 6: the discriminator's first layer is where it starts."""
    gan = wm.GAN(wm.chain([4, 32, 32, 2], "relu"), wm.chain([2, 32, 32, 1], "leaky"))
    opt_d = torch.optim.Adam(gan.D.parameters(), lr=1e-3)
    opt_g = torch.optim.Adam(gan.G.parameters(), lr=1e-3)
    found = []

    def corrupt(t, real, z):
        if t == 6:
            real[0, 0] = math.inf

    with truth.NonfiniteTrace(gan.D) as trace:
        handle = opt_d.register_step_pre_hook(lambda *_: found.append((trace.origin(), len(found))))
        try:

            def step(t):
                trace.reset()
                return wl.gan_step(gan, opt_d, opt_g, batches, before=corrupt)(t)

            batches = wl.gan_data()
            w, _ = fit(gan, [opt_d, opt_g], step, 12, on_nonfinite="locate")
        finally:
            handle.remove()
    first = next((o, t) for o, t in found if o is not None)
    check(first[1] == 6, f"the first non-finite step is {first[1]}, not 6")
    origin = "D." + first[0][0]
    return done(w, broken(Expect("nonfinite", (origin,), 6)), origin=origin, traced_by=first[0][1])


@scenario("lora_nan_input", expects=("nonfinite",), split=HELD)
def lora_nan_input() -> Run:
    """LoRA adapters meet a NaN pixel at step 5: fc1 (frozen base plus adapters) is where it starts."""
    model = wm.LoRANet()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def inject(x):
        x[0, 0] = math.nan

    w, (origin, how) = _traced(model, [opt], model, digit_batches(), F.cross_entropy, 5, inject)
    return done(w, broken(Expect("nonfinite", (origin,), 5)), origin=origin, traced_by=how)

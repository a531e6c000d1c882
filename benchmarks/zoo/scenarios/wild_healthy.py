"""Healthy runs of architectures the rules were not written for (U-Net, diffusion U-Net, LayerScale, GAN, sparse
recommender, LoRA, graph net, custom L2 norm, ReLUs registered after / shared / functional, a loss summed or
scaled under Adam): each must learn and get no finding."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import models, truth
from ..label import HEALTHY, KINDS, Label, Run
from ..loop import classify_step, digit_batches, done, fit, learned
from ..registry import scenario
from ..truth import check
from . import wild_loops as wl
from . import wild_models as wm

HELD = "held-out"


def _unet_run(reduction: str) -> Run:
    model = wm.UNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    w, losses = fit(model, opt, wl.steps_of(model, [opt], wl.segmentation_batches(), wl.seg_loss(reduction)), 60)
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("unet_skip_concat", split=HELD)
def unet_skip_concat() -> Run:
    """A two-level U-Net (skip concatenation, transposed-conv upsampling) segments the ink of noisy digits, Adam:
    healthy."""
    return _unet_run("mean")


@scenario("unet_loss_summed_adam", split=HELD)
def unet_loss_summed_adam() -> Run:
    """The same U-Net with its pixel loss summed over batch and pixels instead of averaged (×2048) under Adam: the
    gradient is 2048× larger, Adam's step is not. Healthy."""
    return _unet_run("sum")


@scenario("mlp_loss_scaled_adam")
def mlp_loss_scaled_adam() -> Run:
    """An MLP whose loss is multiplied by 1e4 (a loss scale left in) under Adam, which divides it out: healthy."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    w, losses = fit(
        model, opt, classify_step(model, opt, digit_batches(), lambda o, y: 1e4 * F.cross_entropy(o, y)), 60
    )
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("diffusion_unet", split=HELD)
def diffusion_unet() -> Run:
    """A small diffusion U-Net (time embedding added at the bottleneck, GroupNorm, SiLU) predicts the noise of
    noised digits, AdamW: healthy."""
    model = wm.UNet(act="silu", time=True, norm=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    w, losses = fit(
        model, opt, wl.steps_of(lambda xt: model(*xt), [opt], wl.diffusion_batches(), F.mse_loss), 80, stats="full"
    )
    return done(w, HEALTHY, **learned(losses, 0.8))


def _layerscale_run(init: float, stats: str = "default") -> Run:
    model = wm.LayerScaleNet(init)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    with truth.recorded_updates(model, opt) as updates:
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 60, stats=stats)
    gamma0 = updates[0]["blocks.0"]
    return done(w, HEALTHY, gamma_update_ratio_step0=gamma0, **learned(losses, 0.6))


@scenario("layerscale_1e5")
def layerscale_1e5() -> Run:
    """Residual MLP blocks with LayerScale γ initialised at 1e-5 (CaiT/DeiT-III), AdamW lr 2e-3: γ moves by ~100×
    its norm on step 0 by design. Healthy."""
    return _layerscale_run(1e-5)


@scenario("layerscale_1e6", split=HELD)
def layerscale_1e6() -> Run:
    """The same with γ initialised at 1e-6 and stats="full": healthy."""
    return _layerscale_run(1e-6, "full")


def _gan_run(stats: str) -> Run:
    gan = wm.GAN(wm.chain([4, 32, 32, 2], "relu"), wm.chain([2, 32, 32, 1], "leaky"))
    opt_d = torch.optim.Adam(gan.D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(gan.G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    means: list[torch.Tensor] = []
    w, _ = fit(gan, [opt_d, opt_g], wl.gan_step(gan, opt_d, opt_g, wl.gan_data(), record=means), 150, stats=stats)
    centre = torch.tensor([2.0, -1.0])
    start, end = float((means[0] - centre).norm()), float((torch.stack(means[-10:]).mean(0) - centre).norm())
    check(end < 0.3 * start, f"the fakes' mean did not approach the data's: {start:.3g} → {end:.3g}")
    return done(w, HEALTHY, fake_mean_distance_start=start, fake_mean_distance_end=end)


@scenario("gan_two_optimizers")
def gan_two_optimizers() -> Run:
    """A GAN on 2-D Gaussian data, generator and discriminator in one container (its forward never called), two
    losses, watched with optimizer=[opt_d, opt_g]: the fakes' mean reaches the data's. Healthy."""
    return _gan_run("default")


@scenario("gan_two_optimizers_full", split=HELD)
def gan_two_optimizers_full() -> Run:
    """The same GAN watched with stats="full": healthy."""
    return _gan_run("full")


def _recommender_run(stats: str) -> Run:
    model = wm.Recommender()
    sparse = torch.optim.SparseAdam([model.user.weight, model.item.weight], lr=3e-2)
    dense = torch.optim.Adam([p for n, p in model.named_parameters() if not n.startswith(("user", "item"))], lr=3e-3)
    w, losses = fit(
        model,
        [sparse, dense],
        wl.steps_of(lambda ui: model(*ui), [sparse, dense], wl.rating_batches(), F.mse_loss),
        150,
        stats=stats,
    )
    return done(w, HEALTHY, **learned(losses, 0.8))


@scenario("recommender_sparse_embeddings")
def recommender_sparse_embeddings() -> Run:
    """A recommender with nn.Embedding(sparse=True) users and items (SparseAdam) and an MLP (Adam), both watched:
    healthy; the sparse gradients are measured, nothing is switched off."""
    return _recommender_run("default")


@scenario("recommender_sparse_full", split=HELD)
def recommender_sparse_full() -> Run:
    """The same recommender with stats="full": healthy."""
    return _recommender_run("full")


@scenario("lora_adapters", split=HELD)
def lora_adapters() -> Run:
    """LoRA adapters (rank 4, B initialised at zero) on two frozen Linear layers plus a trainable head, Adam:
    healthy."""
    model = wm.LoRANet()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 80, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("gcn_nodes", split=HELD)
def gcn_nodes() -> Run:
    """A 3-layer graph convolutional net classifies the nodes of a stochastic block model, Adam: healthy."""
    adj, x, y = wm.block_graph()
    model = wm.GCN(adj, [16, 32, 32, 3])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    w, losses = fit(model, opt, classify_step(model, opt, wl.graph_batches(x, y)), 60, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("l2norm_layer")
def l2norm_layer() -> Run:
    """An MLP with a ParseNet-style L2-normalisation layer (a learned scale initialised at 20) after fc1, SGD with
    momentum: healthy (the scale is a gain vector, not a layer whose gradient vanished)."""
    model = wm.L2NormNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 60, stats="full")
    return done(w, HEALTHY, **learned(losses, 0.6))


@scenario("l2norm_layer_adam", split=HELD)
def l2norm_layer_adam() -> Run:
    """The L2-normalisation MLP under Adam with default statistics: healthy."""
    model = wm.L2NormNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 60)
    return done(w, HEALTHY, **learned(losses, 0.6))


def _relu_net_run(kind: str) -> Run:
    model = wm.RELU_NETS[kind]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with wl.PreactDead(model, ["fc1", "fc2", "fc3"]) as units:
        w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 60, stats="full", sample_every=5)
    worst = {n: max(v) for n, v in units.dead.items()}
    check(max(worst.values()) < 0.5, f"a layer has half its units dead on some step: {worst}")
    return done(w, HEALTHY, most_dead=worst, **learned(losses, 0.6))


@scenario("relu_registered_after", split=HELD)
def relu_registered_after() -> Run:
    """An MLP whose ReLU modules are registered after all its Linear layers, stats="full": healthy."""
    return _relu_net_run("after")


@scenario("relu_shared_module", split=HELD)
def relu_shared_module() -> Run:
    """An MLP that applies one shared self.relu after fc1, fc2 and fc3, stats="full": healthy."""
    return _relu_net_run("shared")


@scenario("relu_functional", split=HELD)
def relu_functional() -> Run:
    """An MLP with F.relu in forward (no activation module), stats="full": healthy."""
    return _relu_net_run("functional")


@scenario("head_replaced_after_optimizer", silent=("not_in_optimizer",))
def head_replaced_after_optimizer() -> Run:
    """An MLP whose head is replaced after the optimizer was built: the new head gets gradients and never changes
    (a silent bug, another finding's business); the body trains. No vanishing, exploding or other gradient finding:
    the static head is no reference for the body."""
    model = models.mlp([64, 64, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.fc3 = torch.nn.Linear(64, 10)
    head = model.fc3.weight.detach().clone()
    w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 60, stats="full")
    check(torch.equal(head, model.fc3.weight.detach()), "the replaced head changed")
    check(model.fc3.weight.grad is not None, "the replaced head got no gradient")
    label = Label(forbid=tuple(k for k in KINDS if k != "stalled_updates"))
    return done(w, label, **learned(losses, 0.8))


@scenario("lora_head_replaced", split=HELD, silent=("not_in_optimizer",))
def lora_head_replaced() -> Run:
    """The LoRA net whose head is replaced after the optimizer was built (the new head gets gradients, never moves):
    no gradient finding; the adapters still train."""
    model = wm.LoRANet()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.head = torch.nn.Linear(64, 10)
    w, losses = fit(model, opt, classify_step(model, opt, digit_batches()), 60)
    label = Label(forbid=tuple(k for k in KINDS if k != "stalled_updates"))
    return done(w, label, **learned(losses, 0.9))

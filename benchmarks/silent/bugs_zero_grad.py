"""Gradients never zeroed between optimizer steps (``missing_zero_grad``)."""

from __future__ import annotations

import torch

from .loop import F, digit_batches, image_batches, models, text_batches, watched
from .registry import Case, bug, param_modules


@bug("so60335387_cnn_no_zero_grad", "missing_zero_grad", step=1)
def cnn_no_zero_grad(steps: int) -> Case:
    """A small CNN on digits whose loop has no ``optimizer.zero_grad()``: every step steps on the sum of all
    gradients so far. Reported on Stack Overflow 60335387 ("PyTorch MNIST example not converge"), reproduced as
    stackoverflow-60335387 in TrainCheck (OSDI '25). Every layer; observable at the first backward after the first
    step (step 1)."""
    model = models.cnn(depth=3, width=8, activation="relu")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = image_batches()

    def step(t: int) -> None:
        x, y = next(batches)
        F.cross_entropy(model(x), y).backward()  # the bug: no opt.zero_grad()
        opt.step()
    return watched(model, opt, step, steps, param_modules(model))


@bug("biggan25_d_steps_no_zero_grad", "missing_zero_grad", step=1)
def gan_d_steps(steps: int) -> Case:
    """A GAN (MLP generator and discriminator on digits) taking 2 discriminator steps per generator step with
    ``D_optim.zero_grad()`` only before the first: the second D step adds to the first one's gradient. Reported in
    ajbrock/BigGAN-PyTorch issue #25 ("Any reason you don't zero optimizer between Discriminator training
    steps?"; fixed as a typo). Watched: the discriminator; every D layer, from D's second step (step 1)."""
    G = models.mlp([16, 32, 64], activation="relu")
    D = models.mlp([64, 32, 1], activation="tanh")
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
    real = digit_batches()
    n_d = 2

    def d_step(i: int) -> None:
        x, _ = next(real)
        fake = G(torch.randn(len(x), 16)).detach()
        loss = F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()
        loss.backward()
        opt_d.step()

    def step(t: int) -> None:  # one discriminator step per call; a generator step after every n_d of them
        if t % n_d == 0:
            opt_d.zero_grad()  # the bug: only before the first of the n_d steps
        d_step(t)
        if t % n_d == n_d - 1:
            opt_g.zero_grad()
            F.softplus(-D(G(torch.randn(32, 16)))).mean().backward()
            opt_g.step()
    return watched(D, opt_d, step, steps, param_modules(D))


@bug("pt115607_gpt2_zero_grad_no_effect", "missing_zero_grad", step=1, needs=("transformers",))
def gpt2_zero_grad_ineffective(steps: int) -> Case:
    """A Hugging Face GPT-2 (tiny random config) whose ``zero_grad()`` has no effect: compiled code kept running an
    obsolete kernel, so ``.grad`` was never reset (pytorch/pytorch issue #115607, reproduced as pytorch-115607 in
    TrainCheck, OSDI '25). Reproduced by a ``zero_grad`` that leaves the gradients in place. Every layer, from
    step 1."""
    model = models.hf_gpt2(layers=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt.zero_grad = lambda set_to_none=True: None  # the bug: zero_grad does nothing
    batches = text_batches()

    def step(t: int) -> None:
        seq = next(batches)
        opt.zero_grad()
        models.lm_loss(model(seq[:, :-1]).logits, seq[:, 1:]).backward()
        opt.step()
    return watched(model, opt, step, steps, param_modules(model))


@bug("lightning557_lstm_submodule_zero_grad", "missing_zero_grad", step=1)
def lstm_partial_zero_grad(steps: int) -> Case:
    """A byte-level LSTM language model whose loop zeroes only the head's gradients (``model.head.zero_grad()``
    standing for ``optimizer.zero_grad()``): the embedding and the LSTM accumulate across steps. The same kind of
    partial zeroing as the Lightning GAN template (Lightning-AI/pytorch-lightning issue #557: "does not seem to
    set properly the gradients of the discriminator to zero"). The embedding and the LSTM, from step 1."""
    model = models.ByteLM("lstm", hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = text_batches()

    def step(t: int) -> None:
        seq = next(batches)
        model.head.zero_grad()  # the bug: only one submodule is zeroed
        models.lm_loss(model(seq[:, :-1]), seq[:, 1:]).backward()
        opt.step()
    return watched(model, opt, step, steps, [n for n in param_modules(model) if n != "head"])

"""Mistakes in the training loop: clipping before unscaling, steps in eval mode, a learning rate driven to zero,
a GradScaler that skips every step."""

from __future__ import annotations

import torch
from torch import nn

from .loop import (
    F,
    data,
    digit_batches,
    image_batches,
    models,
    presence_batches,
    text_batches,
    watched,
)
from .registry import Case, bug, param_modules

COLLAPSE = 1e-3  # a learning rate at or below this fraction of its peak has collapsed (the scenario's own truth)


def _scaler() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cpu")


@bug("unet468_clip_before_unscale", "clip_ineffective", step=0)
def unet_clip_before_unscale(steps: int) -> Case:
    """A small CNN trained through ``GradScaler`` that clips with ``clip_grad_norm_(…, 1.0)`` right after the
    scaled backward, before ``scaler.unscale_`` (milesial/Pytorch-UNet issue #468, "Gradients are clipped before
    the unscaling"; fixed in pull #470). Every layer, from step 0."""
    model = models.cnn(depth=3, width=8, activation="relu")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler, batches = _scaler(), image_batches()

    def step(t: int) -> None:
        x, y = next(batches)
        opt.zero_grad()
        scaler.scale(F.cross_entropy(model(x), y)).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the bug: before scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
    return watched(model, opt, step, steps, param_modules(model))


@bug("examples1196_mingpt_clip_before_unscale", "clip_ineffective", step=0, needs=("transformers",))
def gpt2_clip_before_unscale(steps: int) -> Case:
    """A Hugging Face GPT-2 (tiny random config) trained like pytorch/examples' minGPT-DDP trainer, which clips
    scaled gradients (pytorch/examples issue #1196, "add scaler.unscale_(optimizer) before clip_grad_norm_").
    Every layer, from step 0."""
    model = models.hf_gpt2(layers=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler, batches = _scaler(), text_batches()

    def step(t: int) -> None:
        seq = next(batches)
        opt.zero_grad()
        scaler.scale(models.lm_loss(model(seq[:, :-1]).logits, seq[:, 1:])).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the bug
        scaler.step(opt)
        scaler.update()
    return watched(model, opt, step, steps, param_modules(model))


def _mlp_dropout_bn() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))


@bug("vsepp4_validation_leaves_eval", "eval_mode", step=5)
def validation_leaves_eval(steps: int) -> Case:
    """An MLP with batch norm and dropout validated every 5 steps by a function that calls ``model.eval()`` and
    never ``model.train()`` afterwards, so training goes on in eval mode (fartashf/vsepp issue #4, "Finish
    validation without running model.train()"). The model, from step 5 (the first step after a validation)."""
    model = _mlp_dropout_bn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = digit_batches()
    xv, yv = data.digits()

    def validate() -> None:
        model.eval()  # the bug: nothing sets train mode again
        with torch.no_grad():
            F.cross_entropy(model(xv[:256]), yv[:256])

    def step(t: int) -> None:
        x, y = next(batches)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if t % 5 == 4:
            validate()
    return watched(model, opt, step, steps, ["(model)"])


@bug("clevr22_check_accuracy_eval", "eval_mode", step=3)
def check_accuracy_eval(steps: int) -> Case:
    """A small ResNet (batch norm) whose periodic ``check_accuracy`` puts the model in eval mode and forgets to put
    it back (facebookresearch/clevr-iep pull #22, "Fix potential problem for training"). Here it first runs
    after step 2. The model, from step 3."""
    model = models.ResNet((8, 16))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = image_batches()

    def step(t: int) -> None:
        x, y = next(batches)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if t == 2:
            model.eval()  # check_accuracy(...) without set_mode('train') after it
    return watched(model, opt, step, steps, ["(model)"])


@bug("mmpretrain702_bert_never_train", "eval_mode", step=0, needs=("transformers",))
def bert_never_train(steps: int) -> Case:
    """A Hugging Face BERT classifier (tiny random config, dropout 0.1) put in eval mode before training (as a
    loaded checkpoint is) and trained without ``model.train()``: open-mmlab/mmpretrain issue #702, where
    ``model.train()`` must be called explicitly before training. The model, from step 0."""
    t_ = models._transformers()
    cfg = t_.BertConfig(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, num_labels=2)
    model = t_.BertForSequenceClassification(cfg)
    model.eval()  # the bug: never model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = presence_batches()

    def step(t: int) -> None:
        ids, y = next(batches)
        opt.zero_grad()
        F.cross_entropy(model(ids).logits, y).backward()
        opt.step()
    return watched(model, opt, step, steps, ["(model)"])


def _first_collapsed(lrs: list[float]) -> int:
    """The first step whose learning rate is ≤ COLLAPSE × the highest rate before it (the truth, computed from the
    scheduler's own rates)."""
    peak = 0.0
    for t, lr in enumerate(lrs):
        if lr <= 0 or lr <= COLLAPSE * peak:
            return t
        peak = max(peak, lr)
    raise RuntimeError("the learning rate never collapsed")


def _scheduled_rates(make, n: int) -> list[float]:
    """The rate each of the first ``n`` steps takes under scheduler ``make(opt)`` stepped after every step."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched, out = make(opt), []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def _lr_case(make, steps: int) -> Case:
    model = models.mlp([64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = make(opt)
    batches = digit_batches()

    def step(t: int) -> None:
        x, y = next(batches)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()  # the bug: a per-epoch schedule stepped per batch
    return watched(model, opt, step, steps, param_modules(model))


def _steplr(opt):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)  # "step_size=epochs // 2" with 4 epochs


def _exp(opt):
    return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)


STEPLR_STEP = _first_collapsed(_scheduled_rates(_steplr, 40))
EXP_STEP = _first_collapsed(_scheduled_rates(_exp, 40))


@bug("srgan1_steplr_per_batch", "lr_collapse", step=STEPLR_STEP)
def steplr_per_batch(steps: int) -> Case:
    """An MLP whose ``StepLR(step_size=epochs // 2, gamma=0.1)`` is stepped after every batch instead of every
    epoch, so "learning rate is quickly becoming zero after a few training steps" (Lornatang/SRGAN-PyTorch issue
    #1). Every layer, from the first step at ≤ 1e-3 of the peak rate (computed from the scheduler)."""
    return _lr_case(_steplr, steps)


@bug("ivadomed55_exponential_per_batch", "lr_collapse", step=EXP_STEP)
def exponential_per_batch(steps: int) -> Case:
    """An MLP whose per-epoch ``ExponentialLR(gamma=0.5)`` is stepped in the batch loop (ivadomed/ivadomed pull
    #55, "Scheduler was incorrectly stepped in the batch loop instead of in the epoch loop"). Every layer, from
    the first step at ≤ 1e-3 of the peak rate."""
    return _lr_case(_exp, steps)


@bug("apex715_fp16_overflow_every_step", "amp_skipping", step=0)
def fp16_overflow(steps: int) -> Case:
    """An MLP whose logits are computed in float16 and overflow on every batch, so GradScaler skips every step and
    lowers its scale without end (NVIDIA/apex issue #715, "problems with fp16 on multi-gpu training": "Gradient
    overflow. Skipping step, loss scaler 0 reducing loss scale to 1.4e-303"). No layer singled out; from step
    0."""
    model = models.mlp([64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler, batches = _scaler(), digit_batches()

    def step(t: int) -> None:
        x, y = next(batches)
        opt.zero_grad()
        logits = (model(x).half() * 1e4).float()  # the bug: float16 logits far beyond its range
        scaler.scale(F.cross_entropy(logits, y)).backward()
        scaler.step(opt)
        scaler.update()
    return watched(model, opt, step, steps)

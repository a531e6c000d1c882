"""The same diagnosis through the trainers people use: a tiny BERT under the Hugging Face ``Trainer`` (gradient
accumulation 2, ``max_grad_norm`` 1) and an MLP under PyTorch Lightning (``gradient_clip_val``), each watched by
gradwatch's own callback; healthy, and broken with the fault of a plain-loop scenario (the same finding)."""

from __future__ import annotations

import logging
import math
import tempfile
import warnings

import torch

from .. import data, models, truth
from ..label import HEALTHY, KINDS, Expect, Run, broken
from ..loop import done, gen, learned
from ..registry import scenario
from ..truth import check

HF_STEPS, PL_STEPS = 60, 60
NAN_STEP = 8  # the Trainer's step (global_step after the update) whose forward meets the inf weight


# ---- Hugging Face Trainer ----------------------------------------------------------------------------------------


def _presence_examples(n: int, seq: int = 16, vocab: int = 32) -> list[dict]:
    """``n`` examples of 'does token 3 occur' (the zoo's presence task) as the Trainer's dicts."""
    ids, labels = next(data.presence_batches(vocab, seq, n, gen()))
    return [
        {"input_ids": ids[i], "attention_mask": torch.ones(seq, dtype=torch.long), "labels": labels[i]}
        for i in range(n)
    ]


def _hf_trainer_run(before_step=None) -> tuple[object, list[float], object]:
    """A tiny BERT trained by ``transformers.Trainer`` (AdamW, lr 2e-3 constant, 2 micro-batches of 16 per
    optimizer step, max_grad_norm 1) with ``GradwatchCallback(stats="full")``; ``before_step(model, step)`` runs
    before the forward passes of each optimizer step. Returns (the callback, the per-step losses, the model)."""
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    from gradwatch.integrations.transformers import GradwatchCallback

    class Hook(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            if before_step is not None:
                before_step(model, state.global_step + 1)

    model = models.hf_bert(vocab=32, seq=16)
    callback = GradwatchCallback(stats="full", log=False, report=False)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            max_steps=HF_STEPS,
            per_device_train_batch_size=16,
            gradient_accumulation_steps=2,
            max_grad_norm=1.0,
            learning_rate=2e-3,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            logging_steps=1,
            save_strategy="no",
            logging_nan_inf_filter=False,
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
            data_seed=0,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=_presence_examples(HF_STEPS * 32), callbacks=[callback, Hook()]
        )
        trainer.remove_callback(PrinterCallback)  # the per-step log lines (logging_steps=1 keeps every loss)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return callback, losses, model


@scenario("hf_trainer_bert", needs=("transformers", "accelerate"))
def hf_trainer_bert() -> Run:
    """Tiny BERT under the Hugging Face Trainer (accumulation 2, max_grad_norm 1, AdamW), watched by
    ``GradwatchCallback(stats="full")`` in ``Trainer(callbacks=[...])``: healthy (no false EXPLODING from the
    steps before the first weight norm)."""
    callback, losses, _ = _hf_trainer_run()
    check(len(losses) == HF_STEPS, f"the Trainer logged {len(losses)} losses for {HF_STEPS} steps")
    return done(callback.watcher, HEALTHY, **learned(losses, 0.8))


@scenario("hf_trainer_bert_inf_weight", expects=("nonfinite",), needs=("transformers", "accelerate"))
def hf_trainer_bert_inf_weight() -> Run:
    """The same Trainer run with one weight of the classifier set to inf before step 8 (``nan_from_weight`` under
    the Trainer): nonfinite, origin classifier, step 8."""

    def inject(model, step):
        if step == NAN_STEP:
            with torch.no_grad():
                model.classifier.weight[0, 0] = math.inf

    callback, losses, _ = _hf_trainer_run(inject)
    check(all(math.isfinite(l) for l in losses[: NAN_STEP - 1]), "non-finite before the fault")
    check(not math.isfinite(losses[NAN_STEP - 1]), f"the loss of step {NAN_STEP} is finite: the fault did not happen")
    return done(
        callback.watcher,
        broken(Expect("nonfinite", ("classifier",), NAN_STEP), forbid=tuple(k for k in KINDS if k != "nonfinite")),
    )


# ---- PyTorch Lightning -------------------------------------------------------------------------------------------


def _lightning_run(net: torch.nn.Module, lr: float, clip: float | None, on_step=None) -> tuple[object, list[float]]:
    """``net`` trained on the digits by a Lightning ``Trainer`` (SGD, batches of 64, ``gradient_clip_val=clip``)
    with ``GradwatchCallback(stats="full")``; ``on_step(net)`` runs in ``on_before_optimizer_step``. Returns (the
    callback, the per-step losses)."""
    import lightning.pytorch as pl
    from torch import nn

    from gradwatch.integrations.lightning import GradwatchCallback

    losses: list[float] = []

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net

        def training_step(self, batch, _):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            losses.append(loss.item())
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=lr)

    class Hook(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            if on_step is not None:
                on_step(pl_module.net)

    x, y = data.digits()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True, generator=gen()
    )
    callback = GradwatchCallback(stats="full", report=False)
    quiet = logging.getLogger("lightning.pytorch")
    level = quiet.level
    with tempfile.TemporaryDirectory() as root, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet.setLevel(logging.WARNING)  # not the "GPU available" lines
        trainer = pl.Trainer(
            max_steps=PL_STEPS,
            gradient_clip_val=clip,
            callbacks=[callback, Hook()],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            devices=1,
            default_root_dir=root,
        )
        try:
            trainer.fit(Module(), loader)
        finally:
            quiet.setLevel(level)
    return callback, losses


@scenario("lightning_mlp_clipped", needs=("lightning",))
def lightning_mlp_clipped() -> Run:
    """An MLP on the digits under PyTorch Lightning with gradient_clip_val=0.5 (clipping active), watched by
    ``GradwatchCallback(stats="full")``: healthy."""
    pre_clip: list[float] = []

    def total_norm(net):
        pre_clip.append(math.sqrt(sum(float(p.grad.square().sum()) for p in net.parameters())))

    callback, losses = _lightning_run(models.mlp([64, 64, 64, 10]), 0.2, 0.5, total_norm)
    clipped = sum(n > 0.5 for n in pre_clip)
    check(clipped >= len(pre_clip) // 2, f"clipping was active on only {clipped} of {len(pre_clip)} steps")
    return done(callback.watcher, HEALTHY, clipped_steps=clipped, **learned(losses, 0.6))


@scenario("lightning_sigmoid_vanishing", expects=("vanishing",), needs=("lightning",))
def lightning_sigmoid_vanishing() -> Run:
    """``sigmoid_mlp_vanishing`` under PyTorch Lightning (8 hidden sigmoid layers, SGD, gradient_clip_val=1):
    vanishing from step 0, named at net.fc1."""
    ratios: list[float] = []
    callback, _ = _lightning_run(
        models.mlp([64] + [32] * 8 + [10], "sigmoid"),
        0.1,
        1.0,
        lambda net: ratios.append(truth.relative_ratio(net, "fc1", "fc9")),
    )
    check(max(ratios) < 1e-2, f"fc1's relative gradient reached {max(ratios):.2g} of fc9's")
    return done(
        callback.watcher,
        broken(Expect("vanishing", ("net.fc1",), 0), forbid=("nonfinite", "exploding", "dead_units", "large_updates")),
        fc1_over_fc9_step0=ratios[0],
        fc1_over_fc9_max=max(ratios),
    )

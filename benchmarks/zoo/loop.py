"""Pieces of the scenarios' training loops: a watched fit, the plain steps, the checks that a run learned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import gradwatch as gw

from . import data, models, truth
from .label import Run
from .truth import check

STEP_FN = Callable[[int], float]


def fit(model: nn.Module, optimizer, step: STEP_FN, steps: int, **watch_options) -> tuple[Any, list[float]]:
    """Run ``step(t)`` (one full training step, returning the loss) ``steps`` times under ``gw.watch(model,
    optimizer=optimizer, **watch_options)``; return the (closed) watch and the losses."""
    with gw.watch(model, optimizer=optimizer, **watch_options) as w:
        losses = [step(t) for t in range(steps)]
    return w, losses


def done(w, label, **facts) -> Run:
    """The scenario's result: the watch's history and diagnosis, the label, the facts the label rests on."""
    return Run(w.history, w.diagnose(), label, facts)


def learned(losses: list[float], factor: float = 0.8, window: int = 10) -> dict[str, float]:
    """Check that the loss fell (a healthy run must learn); the first and last window means as facts."""
    check(
        truth.falls(losses, factor, window),
        f"the loss did not fall below {factor}× its start: "
        f"{sum(losses[:window]) / window:.3g} → {sum(losses[-window:]) / window:.3g}",
    )
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


def lambda_logits(model):
    """A callable that returns the ``.logits`` of a Hugging Face model."""
    return lambda inputs: model(inputs).logits


def cpu_grad_scaler():
    try:
        return torch.amp.GradScaler("cpu")
    except (AttributeError, RuntimeError, TypeError) as exc:  # pragma: no cover - depends on the torch build
        raise NotImplementedError(f"torch.amp.GradScaler('cpu') does not work here: {exc}") from exc


def clipped_step(model, opt, batches, loss_fn, max_norm: float, pre_clip: list[float]) -> STEP_FN:
    """One step that clips with ``clip_grad_norm_(max_norm)``, appending the pre-clip norm it returns."""

    def step(t: int) -> float:
        x, y = next(batches)
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        pre_clip.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
        opt.step()
        return loss.item()

    return step


def scaled_backward_and_step(loss, opt, scaler, skipped: list[bool]) -> None:
    """GradScaler's scale → backward → step → update; appends whether the scaler skipped the step (its scale
    fell)."""
    scaler.scale(loss).backward()
    scale = scaler.get_scale()
    scaler.step(opt)
    scaler.update()
    skipped.append(scaler.get_scale() < scale)

"""``lab.train(cfg)``: train the network of a :class:`Config` with gradwatch's own watch attached, store the run.

One optimizer step, in order: forward → task loss (+ L1/L2 penalty, + Pascanu's Ω) → backward (full or
truncated BPTT) → clip (the pre-clip norm is logged) → decoupled weight decay → optimizer step (the watch reads
the gradients here) → weight constraints (projection) → ``on_step`` callback. Every random draw (data split,
weights, shuffling, dropout, augmentation) comes from ``cfg.seed``, so the same config gives the same metrics
on CPU. The global torch RNG state of the caller is restored afterwards.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gradwatch.errors import ConfigError
from gradwatch.lab.bptt import recurrent_backward
from gradwatch.lab.config import Config
from gradwatch.lab.constraints import clip_gradients, project_weights
from gradwatch.lab.models import build_model
from gradwatch.lab.penalties import weight_penalty
from gradwatch.lab.prepare import Prepared, accuracy, prepare, task_loss
from gradwatch.lab.pretrain import pretrain_autoencoders
from gradwatch.lab.recurrent import EchoStateNetwork, RecurrentNet
from gradwatch.lab.run import Run, first_nonfinite_epoch, new_run_id
from gradwatch.lab.sampling import augment, epoch_order
from gradwatch.lab.watching import attach_watch, history_rows

EVAL_BATCH = 1024  # examples per forward pass when evaluating
LSUV_BATCH = 512  # training examples LSUV calibrates on

StepCallback = Callable[[int, nn.Module], None]
EpochCallback = Callable[[int, dict], None]


@dataclass(frozen=True)
class StepProgress:
    """What ``on_progress`` sees after every optimizer step: the run's id, the step (1-based), the epoch, the
    batch's task loss and the live watch (``watcher.history`` copies its queued rows to the host when read)."""

    run_id: str
    step: int
    epoch: int
    loss: float
    watcher: Any


ProgressCallback = Callable[[StepProgress], None]


class StopTraining(Exception):
    """Raise it from ``on_step``, ``on_epoch`` or ``on_progress`` to stop a run early: the run is stored as
    ``interrupted`` and the exception propagates to the caller of :func:`train` (as ``KeyboardInterrupt`` does)."""


def train(
    cfg: Config | None = None,
    *,
    store: Any = None,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    on_progress: ProgressCallback | None = None,
    watch_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> Run:
    """Train ``cfg`` (or ``Config(**overrides)``; overrides also patch a given ``cfg``) and return the Run.

    Args:
        store: a :class:`gradwatch.store.RunStore` (or a path to one) to record the run in.
        on_step: called as ``on_step(step, model)`` after every optimizer step (and projection).
        on_epoch: called as ``on_epoch(epoch, metrics)`` after every epoch.
        on_progress: called as ``on_progress(StepProgress(run_id, step, epoch, loss, watcher))`` after every optimizer
            step (after ``on_step``), to follow a run live (the playground of ``gradwatch serve`` does).
        watch_options: extra options of :func:`gradwatch.watch` (e.g. ``{"stats": "full"}``).
    """
    if cfg is None:
        cfg = Config(**overrides)
    elif overrides:
        cfg = Config(**{**cfg.to_dict(), **overrides})
    if isinstance(store, (str,)) or hasattr(store, "__fspath__"):
        from gradwatch.store import RunStore

        store = RunStore(store)
    elif store is not None and not hasattr(store, "start_run"):
        raise ConfigError("store", store, "expected a RunStore, the path of one, or None")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return _Trainer(cfg, store, on_step, on_epoch, on_progress, watch_options).run()


def _optimizer(cfg: Config, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    momentum = 0.0 if cfg.optimizer == "sgd" else cfg.momentum
    return torch.optim.SGD(params, lr=cfg.lr, momentum=momentum, nesterov=cfg.optimizer == "nesterov")


def _scheduler(cfg: Config, opt: torch.optim.Optimizer):
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    return None


class _Trainer:
    def __init__(
        self,
        cfg: Config,
        store: Any,
        on_step: StepCallback | None,
        on_epoch: EpochCallback | None,
        on_progress: ProgressCallback | None = None,
        watch_options: dict[str, Any] | None = None,
    ):
        self.cfg, self.store, self.on_step, self.on_epoch = cfg, store, on_step, on_epoch
        self.on_progress, self.watch_options = on_progress, dict(watch_options or {})
        self.data: Prepared = prepare(cfg)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        d = self.data
        self.model = build_model(
            cfg,
            d.n_in,
            d.n_out,
            image_shape=d.image_shape,
            per_step=d.per_step,
            generator=self.gen,
            data=d.x_train[:LSUV_BATCH] if cfg.init == "lsuv" else None,
        )
        self.metrics: list[dict] = []
        self.time_grads: list[list[float]] = []
        self.step = 0
        self.history_flushed = -1

    # --- evaluation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> dict[str, float | None]:
        if len(x) == 0:
            return {"loss": None, "accuracy": None}
        was = self.model.training
        self.model.eval()
        outs = torch.cat([self.model(x[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])
        self.model.train(was)
        return {"loss": float(task_loss(outs, y, self.cfg.loss_name)), "accuracy": accuracy(self.cfg, outs, y)}

    def _epoch_metrics(self, epoch: int, extra: dict[str, Any]) -> dict[str, Any]:
        d = self.data
        train, test = self.evaluate(d.x_train, d.y_train), self.evaluate(d.x_test, d.y_test)
        m: dict[str, Any] = {
            "epoch": epoch,
            "step": self.step,
            **extra,
            "train_loss": train["loss"],
            "accuracy": train["accuracy"],
            "test_loss": test["loss"],
            "test_accuracy": test["accuracy"],
        }
        if len(d.x_val):
            val = self.evaluate(d.x_val, d.y_val)
            m["val_loss"], m["val_accuracy"] = val["loss"], val["accuracy"]
        return {k: v for k, v in m.items() if v is not None}

    # --- one step -------------------------------------------------------------------------------------------
    def _loss_backward(self, x: Tensor, y: Tensor, record_time: bool) -> tuple[float, Tensor]:
        """Forward, loss and backward of one batch; returns (task loss, per-example losses)."""
        cfg = self.cfg
        if isinstance(self.model, RecurrentNet):
            return self._recurrent_backward(self.model, x, y, record_time)
        out = self.model(x)
        per = task_loss(out, y, cfg.loss_name, reduction="none")
        loss = per.mean()
        (loss + weight_penalty(self.model, cfg.l1, cfg.l2)).backward()
        return float(loss.detach()), per.detach()

    def _recurrent_backward(self, model: RecurrentNet, x: Tensor, y: Tensor, record_time: bool) -> tuple[float, Tensor]:
        cfg = self.cfg
        res = recurrent_backward(
            model,
            x,
            y,
            loss=cfg.loss_name,
            tbptt=cfg.tbptt,
            pascanu=cfg.pascanu,
            l1=cfg.l1,
            l2=cfg.l2,
            record=record_time,
        )
        if res.time_grads is not None:
            self.time_grads.append(res.time_grads.tolist())
        return res.loss, res.per_example

    # --- the loop -------------------------------------------------------------------------------------------
    def run(self) -> Run:
        cfg = self.cfg
        run_id = new_run_id()
        if self.store is not None:
            self.store.start_run(run_id, cfg)
        run = Run(id=run_id, config=cfg, model=self.model, source=self.data.source)
        try:
            if cfg.pretrain == "autoencoder":
                run.pretraining = pretrain_autoencoders(
                    self.model,
                    self.data.x_train,
                    epochs=cfg.pretrain_epochs,
                    lr=cfg.pretrain_lr,
                    batch_size=cfg.batch_size,
                    generator=self.gen,
                )
            if isinstance(self.model, EchoStateNetwork):
                self._fit_esn(run, self.model)
            else:
                self._fit(run)
        except (KeyboardInterrupt, StopTraining) as exc:
            self._finish(run, "interrupted", type(exc).__name__)
            raise
        except Exception as exc:
            self._finish(run, "failed", f"{type(exc).__name__}: {exc}")
            raise
        bad = first_nonfinite_epoch(self.metrics)
        if bad is None:
            self._finish(run, "completed")
        else:
            self._finish(run, "diverged", f"the {bad[1].replace('_', ' ')} became non-finite in epoch {bad[0]}")
        return run

    def _finish(self, run: Run, status: str, error: str | None = None) -> None:
        run.status, run.metrics, run.error = status, self.metrics, error
        run.time_grad_norms = self.time_grads
        if self.store is not None:
            self.store.finish_run(run.id, status, summary=run.summary(), error=error)

    def _record_epoch(self, run: Run, epoch: int, extra: dict[str, Any], watcher: Any = None) -> dict:
        m = self._epoch_metrics(epoch, extra)
        self.metrics.append(m)
        if self.store is not None:
            layers, rows = history_rows(None if watcher is None else watcher.history, self.history_flushed)
            if rows:
                self.history_flushed = max(r[0] for r in rows)
            times = self.time_grads[-1] if self.time_grads and self.cfg.recurrent else None
            self.store.add_epoch(run.id, epoch, m, layers=layers, history=rows, time_grads=times)
        if self.on_epoch is not None:
            self.on_epoch(epoch, m)
        return m

    def _fit_esn(self, run: Run, model: EchoStateNetwork) -> None:
        start = time.perf_counter()
        model.fit(
            self.data.x_train,
            self.data.y_train.float()
            if self.data.regression
            else nn.functional.one_hot(self.data.y_train, self.data.n_out).float(),
            self.cfg.ridge,
        )
        self._record_epoch(run, 1, {"seconds": time.perf_counter() - start})

    def _fit(self, run: Run) -> None:
        cfg, d, model = self.cfg, self.data, self.model
        opt = _optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
        sched = _scheduler(cfg, opt)
        example_loss = torch.ones(len(d.x_train), device=d.x_train.device)
        best: tuple[float, dict[str, Any] | None, int] = (math.inf, None, 0)  # (val loss, state, epoch)
        params = [p for p in model.parameters() if p.requires_grad]
        with attach_watch(model, opt, cfg.watch_every, **self.watch_options) as watcher:
            for epoch in range(1, cfg.epochs + 1):
                start, losses, norms = time.perf_counter(), [], []
                order = epoch_order(
                    len(d.x_train), cfg.batch_size, cfg.shuffle, cfg.hard_examples, example_loss, self.gen
                )
                model.train()
                for b, idx in enumerate(order):
                    x, y = d.x_train[idx], d.y_train[idx]
                    if cfg.augment_noise or cfg.augment_shift:
                        x = augment(x, d.image_shape, cfg.augment_noise, cfg.augment_shift, self.gen)
                    opt.zero_grad(set_to_none=True)
                    loss, per = self._loss_backward(x, y, record_time=b == 0 and cfg.recurrent)
                    example_loss[idx] = per.to(example_loss.dtype)
                    norms.append(clip_gradients(params, cfg.clip_norm, cfg.clip_value))
                    if cfg.weight_decay:
                        with torch.no_grad():
                            torch._foreach_mul_(
                                [p for p in params if p.dim() >= 2], 1 - opt.param_groups[0]["lr"] * cfg.weight_decay
                            )
                    opt.step()
                    project_weights(model, cfg.max_spectral_norm, cfg.max_abs_weight)
                    self.step += 1
                    losses.append(loss)
                    if self.on_step is not None:
                        self.on_step(self.step, model)
                    if self.on_progress is not None:
                        self.on_progress(StepProgress(run.id, self.step, epoch, loss, watcher))
                    if cfg.steps is not None and self.step >= cfg.steps:
                        break
                norm_t = torch.stack(norms) if norms else torch.zeros(1)
                extra = {
                    "loss": sum(losses) / max(len(losses), 1),
                    "lr": opt.param_groups[0]["lr"],
                    "grad_norm": float(norm_t.mean()),
                    "grad_norm_max": float(norm_t.max()),
                    "seconds": time.perf_counter() - start,
                }
                if sched is not None:
                    sched.step()
                m = self._record_epoch(run, epoch, extra, watcher)
                if cfg.early_stopping is not None:
                    if m["val_loss"] < best[0]:
                        best = (m["val_loss"], copy.deepcopy(model.state_dict()), epoch)
                    elif epoch - best[2] >= cfg.early_stopping:
                        run.stopped_epoch = epoch
                        break
                if cfg.steps is not None and self.step >= cfg.steps:
                    break
        if best[1] is not None:
            model.load_state_dict(best[1])
            run.best_epoch = best[2]
        run.history = watcher.history
        run.watcher = watcher
        run.diagnosis = watcher.diagnose()

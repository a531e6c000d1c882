"""Hugging Face ``Trainer``: ``GradwatchCallback(...).attach(trainer)`` watches the model the trainer trains.

What is recorded, and when:

* The watch is created in ``on_train_begin`` on ``trainer.model`` with the trainer's optimizer (the
  ``torch.optim`` optimizer inside accelerate's wrapper), so its statistics are taken in that optimizer's step
  hooks: ``grad_norm`` and the other gradient statistics are the accumulated gradients the optimizer steps on —
  **after** the Trainer's clipping (``max_grad_norm``), because the Trainer clips before ``optimizer.step()``
  (and before ``on_pre_optimizer_step``) — and ``update_ratio`` is the step actually taken.
* Pre-clip values: the Trainer calls ``accelerator.clip_grad_norm_`` once per optimizer step (to clip, or with
  ``max_norm=inf`` only to measure the norm it logs); accelerate unscales (fp16) and then calls
  ``torch.nn.utils.clip_grad_norm_``, which an open watch sees: the per-layer norms of the accumulated, unscaled
  gradients before clipping are stored as ``grad_norm_preclip``.
* Step numbers are the Trainer's ``global_step`` after the update (the first optimizer step is step 1), the
  numbering of the Trainer's own logs.
* At each flush, every recorded step goes to the Trainer's reporting integrations (``report_to``: TensorBoard,
  W&B, MLflow, …, through their ``on_log``) with one key per statistic and layer, ``gradwatch/<stat>/<layer>``,
  at its own step; NaN/inf as they are. They do not go into ``state.log_history`` or the progress bar.
* At the end of training the watch is closed and the diagnosis printed (``report=False``: not printed);
  ``callback.watcher`` keeps the history and ``diagnose()``. ``sinks``, ``store``, ``name``, ``config`` and the
  other options are :func:`gradwatch.watch`'s.

A ``TrainerCallback`` is not given the trainer, so the callback must be attached to it: ``attach`` adds it to
the trainer's callbacks (if it is not there already) and keeps the reference. The Trainer has no event for a
training that raises: then ``on_train_end`` is not called, so close the watch yourself
(``callback.watcher.close()``) if you keep using the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

try:
    from transformers import TrainerCallback
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK
except ImportError as exc:
    raise ImportError('gradwatch.integrations.transformers needs transformers: '
                      'pip install "gradwatch[transformers]"') from exc

from gradwatch.probe import watch
from gradwatch.sinks import Metrics


class GradwatchCallback(TrainerCallback):
    """Watch the model a Hugging Face ``Trainer`` trains; ``**watch_options`` go to :func:`gradwatch.watch`
    (e.g. ``stats="full"``, ``flush_every=50``, ``sinks=[...]``, ``store="runs.sqlite"``). ``log=False``: do
    not send the values to the reporting integrations; ``report=False``: do not print the diagnosis."""

    def __init__(self, *, log: bool = True, report: bool = True, **watch_options: Any):
        self.log, self.report, self.options = log, report, watch_options
        self.trainer = None
        self.watcher = None

    def attach(self, trainer: Any) -> GradwatchCallback:
        """Give the callback its trainer and put it first among the trainer's callbacks (so that at the end of
        training it hands its last rows to the reporting integrations before they close); returns itself."""
        self.trainer = trainer
        callbacks = trainer.callback_handler.callbacks
        if self in callbacks:
            callbacks.remove(self)
        callbacks.insert(0, self)
        return self

    # ---- events ----------------------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.trainer is None:
            raise RuntimeError("GradwatchCallback needs its trainer: create it with "
                               "GradwatchCallback(...).attach(trainer) before trainer.train()")
        trainer = self.trainer
        options = dict(self.options)
        sinks = list(options.pop("sinks", ()))
        if self.log:
            sinks.insert(0, Metrics(self._report_to_integrations))
        optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # inside accelerate's wrapper
        options = {"start_step": state.global_step + 1, **options}
        self.watcher = watch(trainer.model, optimizer, sinks=sinks, **options)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.watcher is not None and not self.watcher.closed:
            self.watcher.close()
            if self.report:
                print("gradwatch: " + str(self.watcher.diagnose()))

    # ---- reporting -------------------------------------------------------------------------------------------
    def _report_to_integrations(self, metrics: dict[str, float], step: int) -> None:
        """Hand one recorded step to each reporting integration's ``on_log``, as if logged at that step."""
        trainer = self.trainer
        integrations = tuple(INTEGRATION_TO_CALLBACK.values())
        state = dataclasses.replace(trainer.state, global_step=step)
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, integrations):
                callback.on_log(trainer.args, state, trainer.control, logs=dict(metrics), model=trainer.model)

"""Hugging Face ``Trainer``: ``Trainer(..., callbacks=[GradwatchCallback()])`` watches the model it trains.

What is recorded, and when:

* The watch is created in ``on_train_begin`` on the trainer's model with its optimizer (the ``torch.optim``
  optimizer inside accelerate's wrapper), so its statistics are taken in that optimizer's step hooks:
  ``grad_norm`` and the other gradient statistics are the accumulated gradients the optimizer steps on —
  **after** the Trainer's clipping (``max_grad_norm``), because the Trainer clips before ``optimizer.step()`` —
  and ``update_ratio`` is the step actually taken. The norms before clipping are ``grad_norm_preclip``.
* Step numbers are the Trainer's ``global_step`` after the update (the first optimizer step is step 1), the
  numbering of the Trainer's own logs, one per optimizer step (gradient accumulation included).
* At each flush, every recorded step goes to the Trainer's reporting integrations (``report_to``: TensorBoard,
  W&B, MLflow, …, through their ``on_log``) with one key per statistic and layer, ``gradwatch/<stat>/<layer>``,
  at its own step, holding only the values measured there. They do not go into ``state.log_history`` or the
  progress bar.
* At the end of training the watch is closed; the diagnosis goes to the integrations that keep text (TensorBoard
  text, W&B run summary, MLflow artifact ``gradwatch/diagnosis.txt``) and, with ``report=True``, is printed.
  ``callback.watcher`` keeps the history and ``diagnose()``. ``sinks``, ``store``, ``name``, ``config`` and the
  other options are :func:`gradwatch.watch`'s. Every call out of the training step goes through the watch's
  guard: an integration that fails is reported once and left out, and training goes on.

The callback finds the Trainer's callback handler when the Trainer calls it (``on_init_end``, or
``on_train_begin`` for a callback added later) and puts itself first, so that at the end of training it hands its
last rows to the integrations before they close. ``GradwatchCallback().attach(trainer)`` does the same
explicitly. The Trainer has no event for a training that raises: then ``on_train_end`` is not called, so close the
watch yourself (``callback.watcher.close()``) if you keep using the model.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

try:
    from transformers import TrainerCallback
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK
    from transformers.trainer_callback import CallbackHandler
except ImportError as exc:
    raise ImportError(
        'gradwatch.integrations.transformers needs transformers: pip install "gradwatch[transformers]"'
    ) from exc

from gradwatch.integrations.diagnosis import KEY, write_diagnosis
from gradwatch.sinks import Metrics
from gradwatch.watching import watch


def _calling_handler() -> CallbackHandler | None:
    """The ``CallbackHandler`` whose event is running now (it calls the callback), or None."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            owner = frame.f_locals.get("self")
            if isinstance(owner, CallbackHandler):
                return owner
            frame = frame.f_back
        return None
    finally:
        del frame


class GradwatchCallback(TrainerCallback):
    """Watch the model a Hugging Face ``Trainer`` trains; ``**watch_options`` go to :func:`gradwatch.watch`
    (e.g. ``stats="full"``, ``flush_every=50``, ``sinks=[...]``, ``store="runs.sqlite"``). ``log=False``: send
    neither the values nor the diagnosis to the reporting integrations; ``report=False``: do not print the
    diagnosis. The same options as :class:`gradwatch.integrations.lightning.GradwatchCallback`."""

    def __init__(self, *, log: bool = True, report: bool = True, **watch_options: Any):
        self.log, self.report, self.options = log, report, watch_options
        self.handler: CallbackHandler | None = None
        self.watcher: Any = None
        self._event: tuple[Any, Any, Any] | None = None  # (args, state, control) of the latest event

    def attach(self, trainer: Any) -> GradwatchCallback:
        """Add the callback to ``trainer`` (first among its callbacks) if it is not there; returns itself. Not
        needed with ``Trainer(callbacks=[GradwatchCallback()])``."""
        self._take(trainer.callback_handler)
        return self

    def _take(self, handler: CallbackHandler | None) -> None:
        """Keep the handler and go first in it (a new list: the handler may be iterating over the old one)."""
        if handler is None:
            return
        self.handler = handler
        handler.callbacks = [self] + [c for c in handler.callbacks if c is not self]

    # ---- events ----------------------------------------------------------------------------------------------
    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.handler is None:
            self._take(_calling_handler())

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None, **kwargs: Any
    ) -> None:
        if self.handler is None:
            self._take(_calling_handler())
        self._event = (args, state, control)
        options = dict(self.options)
        sinks = list(options.pop("sinks", ()))
        if self.log and self.handler is not None:
            sinks.insert(
                0,
                Metrics(
                    self._report_to_integrations, text=self._diagnosis_to_integrations, name="Trainer integrations"
                ),
            )
        if self.report:
            sinks.append(Metrics(_ignore, text=lambda text: print("gradwatch: " + text), name="diagnosis print"))
        optimizer = getattr(optimizer, "optimizer", optimizer)  # inside accelerate's wrapper
        options = {"start_step": state.global_step + 1, **options}
        self.watcher = watch(model, optimizer, sinks=sinks, **options)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._event = (args, state, control)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._event = (args, state, control)
        if self.watcher is not None and not self.watcher.closed:
            self.watcher.close()

    # ---- reporting -------------------------------------------------------------------------------------------
    def _integrations(self) -> list[Any]:
        kinds = tuple(INTEGRATION_TO_CALLBACK.values())
        return [c for c in self.handler.callbacks if isinstance(c, kinds)] if self.handler is not None else []

    def _report_to_integrations(self, metrics: dict[str, float], step: int) -> None:
        """Hand one recorded step to each reporting integration's ``on_log``, as if logged at that step."""
        if self._event is None or self.handler is None:
            return
        args, state, control = self._event
        state = dataclasses.replace(state, global_step=step)
        for callback in self._integrations():
            callback.on_log(args, state, control, logs=dict(metrics), model=self.handler.model)

    def _diagnosis_to_integrations(self, text: str) -> None:
        """The diagnosis where each integration keeps text: TensorBoard text, W&B summary, MLflow artifact; the
        other integrations get it through their ``on_log`` as ``{"gradwatch/diagnosis": text}``."""
        if self._event is None or self.handler is None:
            return
        args, state, control = self._event
        for callback in self._integrations():
            wandb = getattr(callback, "_wandb", None)
            mlflow = getattr(callback, "_ml_flow", None)
            target = (
                getattr(callback, "tb_writer", None)
                or getattr(wandb, "run", None)
                or (mlflow if mlflow is not None and mlflow.active_run() is not None else None)
            )
            if not write_diagnosis(target, text, state.global_step) and not _keeps_text_apart(callback):
                callback.on_log(args, state, control, logs={KEY: text}, model=self.handler.model)


def _keeps_text_apart(callback: Any) -> bool:
    """TensorBoard, W&B and MLflow take text only as above (their ``on_log`` wants numbers); before they are
    set up (no writer, run or active run yet) they get nothing."""
    return type(callback).__name__ in ("TensorBoardCallback", "WandbCallback", "MLflowCallback")


def _ignore(metrics: dict[str, float], step: int) -> None:
    """The diagnosis print takes no values."""

"""PyTorch Lightning: ``Trainer(callbacks=[GradwatchCallback()])`` watches the LightningModule's gradients.

* The watch is created in ``on_train_start`` (after a checkpoint is restored) on the LightningModule and records
  in ``on_before_optimizer_step``: Lightning calls it after the backward passes of the accumulated batches, after
  unscaling under mixed precision, and *before* gradient clipping — so the recorded gradients are the accumulated,
  unscaled, pre-clip ones the clipping sees (with ``gradient_clip_val`` they are also recorded as
  ``grad_norm_preclip``, so the diagnosis knows the loop clips). The watch has no optimizer hooks, so
  ``update_ratio`` is not recorded.
* Steps are Lightning's: each recorded step carries the step Lightning's own ``self.log`` values are logged at
  (the loop's count of batches that stepped, which its loggers use), so the axis goes on across a resume from a
  checkpoint, and there is one row per trainer step however many optimizers step in it (with several optimizers
  under manual optimisation, the gradients present at each ``optimizer.step()`` go into that row; clipping there
  is the user's call, so the values are whatever ``p.grad`` holds when ``step()`` is called).
* At each flush, every recorded step goes to the trainer's loggers (``logger.log_metrics``) with one key per
  statistic and layer, ``gradwatch/<stat>/<layer>``, at its step, holding only the values measured there. A
  logger whose writer is already a sink of the watch (``sinks=[TensorBoard(writer=logger.experiment)]``) is not
  written twice.
* At the end of fit (or on an exception) the watch is closed: the diagnosis goes to the loggers that keep text
  (TensorBoard text, W&B run summary, MLflow artifact ``gradwatch/diagnosis.txt``) and, with ``report=True``, to
  the log (rank zero). ``callback.watcher`` has the history and ``diagnose()``; ``sinks``, ``store``, ``name``,
  ``config`` and the other options are :func:`gradwatch.watch`'s. Every call out of the training step goes
  through the watch's guard: a logger that fails is reported once and left out, and training goes on.
"""

from __future__ import annotations

import warnings
from typing import Any

try:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities import rank_zero_info
except ImportError:  # the standalone package name
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
        from pytorch_lightning.utilities import rank_zero_info  # type: ignore[no-redef]
    except ImportError as exc:
        raise ImportError(
            'gradwatch.integrations.lightning needs PyTorch Lightning: pip install "gradwatch[lightning]"'
        ) from exc

from gradwatch.integrations.diagnosis import write_diagnosis
from gradwatch.sinks import Metrics
from gradwatch.watching import watch


def logged_step(trainer: Any) -> int:
    """The step Lightning logs the current batch at (what its loggers receive): one per trainer step, whatever
    the number of optimizers; ``trainer.global_step`` where the loop does not say."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    step = getattr(loop, "_batches_that_stepped", None)
    return int(step) if isinstance(step, int) else int(trainer.global_step)


class GradwatchCallback(pl.Callback):
    """Watch a LightningModule while it trains; ``**watch_options`` go to :func:`gradwatch.watch` (e.g.
    ``stats="full"``, ``flush_every=50``, ``sinks=[...]``, ``store="runs.sqlite"``). ``log=False``: send neither
    the values nor the diagnosis to the trainer's loggers; ``report=False``: do not log the diagnosis at the end.
    The same options as :class:`gradwatch.integrations.transformers.GradwatchCallback`."""

    def __init__(
        self, *, log: bool = True, report: bool = True, print_diagnosis: bool | None = None, **watch_options: Any
    ):
        super().__init__()
        if print_diagnosis is not None:
            warnings.warn("GradwatchCallback(print_diagnosis=...) is now report=...", FutureWarning, stacklevel=2)
            report = print_diagnosis
        self.log, self.report, self.options = log, report, watch_options
        self.watcher: Any = None

    @property
    def print_diagnosis(self) -> bool:  # the earlier name of ``report``
        return self.report

    def _loggers(self, trainer: Any, sinks: list[Any]) -> list[Any]:
        """The trainer's loggers, less those that a sink already writes to (the same writer)."""
        writers = {id(s.writer) for s in sinks if getattr(s, "writer", None) is not None}
        return [lg for lg in trainer.loggers if id(_experiment(lg)) not in writers]

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        options = dict(self.options)
        sinks = list(options.pop("sinks", ()))
        loggers = self._loggers(trainer, sinks) if self.log else []
        if loggers:
            sinks.insert(
                0,
                Metrics(
                    lambda metrics, step: [lg.log_metrics(metrics, step) for lg in loggers],
                    text=lambda text: [
                        write_diagnosis(_experiment(lg), text, logged_step(trainer), getattr(lg, "run_id", None))
                        for lg in loggers
                    ],
                    name="Lightning loggers",
                ),
            )
        if self.report:
            sinks.append(Metrics(_ignore, text=lambda text: rank_zero_info("gradwatch: " + text), name="diagnosis log"))
        options = {"start_step": logged_step(trainer), **options}
        self.watcher = watch(pl_module, None, sinks=sinks, **options)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.watcher is not None and not self.watcher.closed:
            # Lightning clips after this hook (gradient_clip_val, automatic optimisation): these are the pre-clip values
            clips = bool(trainer.gradient_clip_val) and pl_module.automatic_optimization
            self.watcher.step(at=logged_step(trainer), before_clip=clips)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.watcher is not None and not self.watcher.closed:
            self.watcher.close()


def _experiment(logger: Any) -> Any:
    """The logger's writer / run / client (rank zero); None where it has none."""
    try:
        return logger.experiment
    except Exception:  # noqa: BLE001 - a logger without an experiment on this rank
        return None


def _ignore(metrics: dict[str, float], step: int) -> None:
    """The diagnosis sink takes no values."""

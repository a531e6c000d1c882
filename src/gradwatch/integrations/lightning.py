"""PyTorch Lightning: ``Trainer(callbacks=[GradwatchCallback()])`` watches the LightningModule's gradients.

* The watch is created in ``on_fit_start`` (on the LightningModule, step numbers from ``trainer.global_step``)
  and records in ``on_before_optimizer_step``: Lightning calls it after the backward passes of the accumulated
  batches, after unscaling under mixed precision, and *before* gradient clipping — so the recorded gradients
  are the accumulated, unscaled, pre-clip ones the clipping sees (with ``gradient_clip_val`` they are also
  recorded as ``grad_norm_preclip``, so the diagnosis knows the loop clips). With manual optimisation and several
  optimizers, each ``optimizer.step()`` is one recorded step, and a layer is measured where it has a gradient
  (clipping in manual optimisation is the user's call, so the values there are whatever ``p.grad`` holds when
  ``step()`` is called). The watch has no optimizer hooks, so ``update_ratio`` is not recorded.
* At each flush, every recorded step goes to the trainer's loggers (``logger.log_metrics``) with one key per
  statistic and layer, ``gradwatch/<stat>/<layer>``, at the step it was recorded; NaN/inf as they are.
* At the end of fit (or on an exception) the watch is closed: the diagnosis is logged (rank zero), and written
  as text to loggers that take text (TensorBoard's ``add_text``). ``callback.watcher`` has the history and
  ``diagnose()``; ``sinks``, ``store``, ``name``, ``config`` and the other options are :func:`gradwatch.watch`'s.
"""

from __future__ import annotations

from typing import Any

try:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities import rank_zero_info
except ImportError:  # the standalone package name
    try:
        import pytorch_lightning as pl
        from pytorch_lightning.utilities import rank_zero_info
    except ImportError as exc:
        raise ImportError('gradwatch.integrations.lightning needs PyTorch Lightning: '
                          'pip install "gradwatch[lightning]"') from exc

from gradwatch.probe import watch
from gradwatch.sinks import Metrics


class GradwatchCallback(pl.Callback):
    """Watch a LightningModule while it trains; ``**watch_options`` go to :func:`gradwatch.watch` (e.g.
    ``stats="full"``, ``flush_every=50``, ``sinks=[...]``, ``store="runs.sqlite"``). ``log=False``: do not send
    the values to the trainer's loggers; ``print_diagnosis=False``: do not log the diagnosis at the end."""

    def __init__(self, *, log: bool = True, print_diagnosis: bool = True, **watch_options: Any):
        super().__init__()
        self.log, self.print_diagnosis, self.options = log, print_diagnosis, watch_options
        self.watcher = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        options = dict(self.options)
        sinks = list(options.pop("sinks", ()))
        if self.log and trainer.loggers:
            sinks.insert(0, Metrics(lambda metrics, step: [lg.log_metrics(metrics, step) for lg in trainer.loggers],
                                    text=lambda text: [lg.experiment.add_text("gradwatch/diagnosis",
                                                                              f"```\n{text}\n```")
                                                       for lg in trainer.loggers
                                                       if hasattr(getattr(lg, "experiment", None), "add_text")]))
        options = {"start_step": trainer.global_step, **options}
        self.watcher = watch(pl_module, None, sinks=sinks, **options)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.watcher is not None and not self.watcher.closed:
            # Lightning clips after this hook (gradient_clip_val, automatic optimisation): these are the pre-clip values
            clips = bool(trainer.gradient_clip_val) and pl_module.automatic_optimization
            self.watcher.step(before_clip=clips)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.watcher is None or self.watcher.closed:
            return
        self.watcher.close()
        if self.print_diagnosis:
            rank_zero_info("gradwatch: " + str(self.watcher.diagnose()))

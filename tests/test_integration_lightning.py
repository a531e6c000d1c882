"""The Lightning callback: per-layer scalars in a TensorBoardLogger's event files, equal to the pre-clip
gradient norms computed by hand in the same hook, and a diagnosis at the end of fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch", reason="PyTorch Lightning is not installed (gradwatch[lightning])")
pytest.importorskip("tensorboard", reason="tensorboard is not installed (gradwatch[tensorboard])")

from gradwatch.integrations.lightning import GradwatchCallback  # noqa: E402

STEPS = 20
CLIP = 1e-3  # small enough that Lightning's clipping changes every step's gradients


class TinyNet(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class HandNorms(pl.Callback):
    """The reference: each layer's gradient norm computed directly from p.grad in the same hook, and the
    norm after clipping (still in p.grad when the batch ends; global_step has advanced by then)."""

    def __init__(self):
        self.pre, self.post = {}, {}

    @staticmethod
    def _norms(module):
        return {f"net.{name}": float(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in m.parameters()])))
                for name, m in module.net.named_children() if isinstance(m, nn.Linear)}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.pre[trainer.global_step] = self._norms(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.post[trainer.global_step - 1] = sum(v ** 2 for v in self._norms(pl_module).values()) ** 0.5


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4 * STEPS, 6, generator=g)
    y = torch.randint(0, 3, (4 * STEPS,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)


def test_lightning_callback_logs_preclip_per_layer_scalars_and_a_diagnosis(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    model, hand = TinyNet(), HandNorms()
    callback = GradwatchCallback(flush_every=5)
    logger = TensorBoardLogger(str(tmp_path), name="tb", version=0)
    trainer = pl.Trainer(max_steps=STEPS, logger=logger, callbacks=[callback, hand], gradient_clip_val=CLIP,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=1)
    trainer.fit(model, _data())

    events = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    layers = ["net.0", "net.2", "net.4"]
    for layer in layers:
        points = events.Scalars(f"gradwatch/grad_norm/{layer}")
        assert [p.step for p in points] == list(range(STEPS))
        for p in points:  # the logged value is the pre-clip norm computed by hand at the same step
            assert p.value == pytest.approx(hand.pre[p.step][layer], rel=1e-5)
    # grad_norm_preclip (the loop clips): step k's own values, not step k-1's
    h = callback.watcher.history
    for row, step in enumerate(h.steps.tolist()):
        for col, layer in enumerate(h.layers):
            assert h.stat("grad_norm_preclip")[row, col] == pytest.approx(hand.pre[step][layer], rel=1e-5)
    assert {f"gradwatch/{s}/{l}" for s in ("grad_abs_mean", "grad_abs_max", "nonfinite", "weight_norm")
            for l in layers} <= set(events.Tags()["scalars"])
    # the values are pre-clip: the clipping then scaled the total down to CLIP
    for step, total in hand.post.items():
        pre_total = sum(v ** 2 for v in hand.pre[step].values()) ** 0.5
        assert pre_total > 10 * CLIP and total == pytest.approx(CLIP, rel=1e-3)
    # a diagnosis at the end of fit, also as text in the event file
    assert callback.watcher.closed and len(callback.watcher.history) == STEPS
    diagnosis = callback.watcher.diagnose()
    (text,) = events.Tensors("gradwatch/diagnosis/text_summary")
    assert str(diagnosis).splitlines()[0] in text.tensor_proto.string_val[0].decode()


def _trainer(tmp_path, callbacks, loggers, max_steps=STEPS, **kwargs):
    return pl.Trainer(max_steps=max_steps, logger=loggers, callbacks=callbacks, log_every_n_steps=1,
                      enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1, **kwargs)


class LoggingNet(TinyNet):
    def training_step(self, batch, _):
        loss = super().training_step(batch, _)
        self.log("loss", loss)  # Lightning's own step axis, to compare with
        return loss


def _scalars(log_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events, events.Scalars(tag)


def test_steps_go_on_across_a_resume_from_a_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    torch.manual_seed(0)
    ckpt = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True, every_n_train_steps=STEPS // 2)
    first = GradwatchCallback(flush_every=4, report=False)
    _trainer(tmp_path, [first, ckpt], TensorBoardLogger(str(tmp_path), name="a", version=0),
             max_steps=STEPS // 2).fit(LoggingNet(), _data())
    second = GradwatchCallback(flush_every=4, report=False)
    logger = TensorBoardLogger(str(tmp_path), name="b", version=0)
    _trainer(tmp_path, [second], logger).fit(LoggingNet(), _data(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert first.watcher.history.steps.tolist() == list(range(STEPS // 2))
    assert second.watcher.history.steps.tolist() == list(range(STEPS // 2, STEPS))  # goes on, not from 0
    events, ours = _scalars(logger.log_dir, "gradwatch/grad_norm/net.0")
    lightning = [p.step for p in events.Scalars("loss")]  # where Lightning logs its own values
    assert [p.step for p in ours] == lightning == list(range(STEPS // 2, STEPS))


class TwoOptimizers(pl.LightningModule):
    """Manual optimisation, two heads, one optimizer each; the hand norms are taken at each optimizer's step."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = nn.Linear(6, 3), nn.Linear(6, 3)
        self.hand = {}

    def training_step(self, batch, _):
        x, y = batch
        opt_a, opt_b = self.optimizers()
        for opt, head in ((opt_a, self.a), (opt_b, self.b)):
            loss = nn.functional.cross_entropy(head(x), y)
            opt.zero_grad()
            self.manual_backward(loss)
            grads = torch.cat([p.grad.reshape(-1) for p in head.parameters()])
            self.hand.setdefault(self.trainer.fit_loop.epoch_loop._batches_that_stepped, {})[
                "a" if head is self.a else "b"] = float(torch.linalg.vector_norm(grads))
            opt.step()
        self.log("loss", loss)

    def configure_optimizers(self):
        return torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters(), lr=0.1)


def test_two_optimizers_make_one_step_per_trainer_step(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    torch.manual_seed(0)
    model, callback = TwoOptimizers(), GradwatchCallback(flush_every=4, report=False)
    logger = TensorBoardLogger(str(tmp_path), name="tb", version=0)
    trainer = _trainer(tmp_path, [callback], logger, max_steps=2 * STEPS, enable_checkpointing=False)
    trainer.fit(model, _data())
    assert trainer.global_step == 2 * STEPS  # Lightning counts each optimizer's step ...
    h = callback.watcher.history
    assert h.steps.tolist() == list(range(STEPS))  # ... its loggers, and the watch, one per trainer step
    for row, step in enumerate(h.steps.tolist()):
        for layer in ("a", "b"):
            assert h.stat("grad_norm")[row, h.layers.index(layer)] == pytest.approx(model.hand[step][layer], rel=1e-5)
    events, ours = _scalars(logger.log_dir, "gradwatch/grad_norm/a")
    assert [p.step for p in ours] == [p.step for p in events.Scalars("loss")] == list(range(STEPS))


def test_a_tensorboard_sink_on_the_loggers_writer_writes_once(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    torch.manual_seed(0)
    logger = TensorBoardLogger(str(tmp_path), name="tb", version=0)
    callback = GradwatchCallback(flush_every=5, report=False, sinks=[
        __import__("gradwatch").sinks.TensorBoard(writer=logger.experiment)])
    _trainer(tmp_path, [callback], logger, enable_checkpointing=False).fit(LoggingNet(), _data())
    events, points = _scalars(logger.log_dir, "gradwatch/grad_norm/net.0")
    assert [p.step for p in points] == list(range(STEPS))  # once per step, not twice
    assert len(events.Tensors("gradwatch/diagnosis/text_summary")) == 1


def test_values_and_diagnosis_reach_mlflow_wandb_and_csv_loggers_without_nan(tmp_path, monkeypatch, request):
    pytest.importorskip("mlflow", reason="mlflow is not installed (gradwatch[mlflow])")
    wandb = pytest.importorskip("wandb", reason="wandb is not installed (gradwatch[wandb])")
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # MLFlowLogger sets it: restored after the test
    request.addfinalizer(lambda: mlflow.set_tracking_uri(None))  # and the process-wide URI it sets
    for var, value in (("WANDB_MODE", "offline"), ("WANDB_SILENT", "true"), ("WANDB_CONSOLE", "off")):
        monkeypatch.setenv(var, value)
    import csv

    from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, WandbLogger
    from test_sink_wandb import read_history
    from mlflow.tracking import MlflowClient

    torch.manual_seed(0)
    uri = (tmp_path / "mlruns").as_uri()
    mlf = MLFlowLogger(experiment_name="gw", tracking_uri=uri)
    csv_logger = CSVLogger(str(tmp_path), name="csv", version=0)
    callback = GradwatchCallback(flush_every=5, sample_every=4)
    with pytest.warns(FutureWarning, match="report"):
        GradwatchCallback(print_diagnosis=False)  # the earlier name still works
    wb = WandbLogger(project="gw", save_dir=str(tmp_path), offline=True)
    _trainer(tmp_path, [callback], [mlf, csv_logger, wb], enable_checkpointing=False).fit(LoggingNet(), _data())
    run_dir = wb.experiment.dir
    wandb.finish()
    h = callback.watcher.history
    diagnosis = str(callback.watcher.diagnose())
    client = MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(mlf.run_id, "gradwatch/weight_norm/net.0")
    assert sorted(m.step for m in history) == h.sampled_steps("weight_norm").tolist() == [0, 4, 8, 12, 16]
    (tmp_path / "dl").mkdir()
    text = open(client.download_artifacts(mlf.run_id, "gradwatch/diagnosis.txt", str(tmp_path / "dl")),
                encoding="utf-8").read()
    assert text == diagnosis
    with open(csv_logger.experiment.metrics_file_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cells = [v for r in rows for k, v in r.items() if k.startswith("gradwatch/")]
    assert cells and "nan" not in {c.lower() for c in cells}  # blank where not measured, never NaN
    assert sum(1 for r in rows if r.get("gradwatch/weight_norm/net.0")) == 5
    wb_rows, summary = read_history(Path(run_dir).parent)  # W&B's offline run, read with W&B's own reader
    assert summary["gradwatch/diagnosis"] == diagnosis
    ours = [r for r in wb_rows if "gradwatch/grad_norm/net.0" in r]
    assert sorted(r["trainer/global_step"] for r in ours) == list(range(STEPS))  # every row, at Lightning's step

"""The Lightning callback: per-layer scalars in a TensorBoardLogger's event files, equal to the pre-clip
gradient norms computed by hand in the same hook, and a diagnosis at the end of fit."""

from __future__ import annotations

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

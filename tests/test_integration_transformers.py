"""The Hugging Face Trainer callback on a tiny random-config BERT: the history's gradient norms equal the ones
computed by hand at the same step, they reach the Trainer's TensorBoard integration, and pre-clip values are
captured before the Trainer's clipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers is not installed (gradwatch[transformers])")
pytest.importorskip("accelerate", reason="accelerate (needed by transformers' Trainer) is not installed")
pytest.importorskip("tensorboard", reason="tensorboard is not installed (gradwatch[tensorboard])")

from gradwatch.integrations.transformers import GradwatchCallback  # noqa: E402

STEPS = 4
MAX_NORM = 0.05  # small enough that the Trainer's clipping changes every step's gradients


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("WANDB_DISABLED", "true")


def _bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(cfg)


def _dataset(n=4 * STEPS):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 64, (n, 12), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    return [{"input_ids": ids[i], "attention_mask": torch.ones(12, dtype=torch.long), "labels": labels[i]}
            for i in range(n)]


class HandNorms(transformers.TrainerCallback):
    """The reference: the classifier's gradient norm computed directly from p.grad right before the optimizer
    step (after the Trainer's clipping, like the watch's optimizer hook), keyed by the step being made."""

    def __init__(self):
        self.norms = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = [p.grad.reshape(-1) for p in model.classifier.parameters()]
        self.norms[state.global_step + 1] = float(torch.linalg.vector_norm(torch.cat(grads)))


def _trainer(tmp_path, callbacks, report_to=()):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=STEPS, per_device_train_batch_size=4,
                             learning_rate=1e-3, max_grad_norm=MAX_NORM, logging_steps=1, save_strategy="no",
                             report_to=list(report_to), use_cpu=True, disable_tqdm=True, seed=0)
    return Trainer(model=_bert(), args=args, train_dataset=_dataset(), callbacks=callbacks)


def test_trainer_history_equals_hand_norms_and_reaches_tensorboard(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    hand = HandNorms()
    trainer = _trainer(tmp_path, [hand], report_to=["tensorboard"])
    callback = GradwatchCallback(flush_every=2, sample_every=2, report=False).attach(trainer)
    trainer.train()

    h = callback.watcher.history
    assert callback.watcher.closed and h.steps.tolist() == list(range(1, STEPS + 1))
    col = h.layers.index("classifier")
    for step, value in zip(h.steps.tolist(), h.stat("grad_norm")[:, col]):
        assert value == pytest.approx(hand.norms[step], rel=1e-5)
    # post-clip: the layers' norms add up (in squares) to the clipping threshold, while the Trainer's own
    # logged norm (measured before clipping) was above it
    logged = [e["grad_norm"] for e in trainer.state.log_history if "grad_norm" in e]
    assert len(logged) == STEPS and min(logged) > MAX_NORM
    np.testing.assert_allclose(np.sqrt(np.nansum(h.stat("grad_norm") ** 2, axis=1)), MAX_NORM, rtol=1e-4)
    # the same values went through the Trainer's TensorBoard integration, at the Trainer's step numbers
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    points = events.Scalars("train/gradwatch/grad_norm/classifier")
    assert {p.step: p.value for p in points} == pytest.approx(hand.norms, rel=1e-5)
    ratio = events.Scalars("train/gradwatch/update_ratio/bert.encoder.layer.1.output.dense")
    assert [p.step for p in ratio] == [2, 4]  # a sampled statistic where it was sampled (every 2nd step), only
    assert "gradwatch" not in str(trainer.state.log_history)  # the Trainer's own log stays small
    # the clip wrapper is gone after training
    assert "clip_grad_norm_" not in trainer.accelerator.__dict__


def test_trainer_preclip_values_add_up_to_the_trainers_own_norm_with_accumulation(tmp_path):
    """Whatever accelerate calls to clip (torch's clip_grad_norm_ in old versions, get_total_norm +
    clip_grads_with_norm_ in new ones), the per-layer pre-clip norms, combined, are the Trainer's own logged
    grad_norm (its total before clipping) at every step, with gradient accumulation over two micro-batches."""
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=STEPS, per_device_train_batch_size=2,
                             gradient_accumulation_steps=2, learning_rate=1e-3, max_grad_norm=MAX_NORM,
                             logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True,
                             seed=0)
    hand = HandNorms()
    trainer = Trainer(model=_bert(), args=args, train_dataset=_dataset(), callbacks=[hand])
    callback = GradwatchCallback(report=False).attach(trainer)
    trainer.train()

    h = callback.watcher.history
    logged = {e["step"]: e["grad_norm"] for e in trainer.state.log_history if "grad_norm" in e}
    assert sorted(logged) == h.steps.tolist() == list(range(1, STEPS + 1)) and min(logged.values()) > MAX_NORM
    combined = np.sqrt(np.nansum(h.stat("grad_norm_preclip") ** 2, axis=1))
    np.testing.assert_allclose(combined, [logged[s] for s in h.steps.tolist()], rtol=1e-5)
    # and after the clip, what the optimizer stepped on (computed from p.grad by the reference callback)
    col = h.layers.index("classifier")
    np.testing.assert_allclose(h.stat("grad_norm")[:, col], [hand.norms[s] for s in h.steps.tolist()], rtol=1e-5)


def test_callback_in_the_trainers_list_needs_no_attach(tmp_path, monkeypatch, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    hand, callback = HandNorms(), GradwatchCallback(flush_every=3)
    trainer = _trainer(tmp_path, [hand, callback], report_to=["tensorboard"])
    assert trainer.callback_handler.callbacks[0] is callback  # first: it hands its last rows over before they close
    trainer.train()
    h = callback.watcher.history
    assert h.steps.tolist() == list(range(1, STEPS + 1))
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    points = events.Scalars("train/gradwatch/grad_norm/classifier")
    assert {p.step: p.value for p in points} == pytest.approx(hand.norms, rel=1e-5)
    diagnosis = str(callback.watcher.diagnose())
    (text,) = events.Tensors("gradwatch/diagnosis/text_summary")  # the diagnosis as TensorBoard text
    assert diagnosis.splitlines()[0] in text.tensor_proto.string_val[0].decode()
    assert "gradwatch: " + diagnosis.splitlines()[0] in capsys.readouterr().out  # and printed


def test_the_diagnosis_reaches_wandb_and_mlflow(tmp_path, monkeypatch, request):
    pytest.importorskip("wandb", reason="wandb is not installed (gradwatch[wandb])")
    pytest.importorskip("mlflow", reason="mlflow is not installed (gradwatch[mlflow])")
    import json
    import subprocess
    import sys

    import mlflow
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    mlflow.set_tracking_uri(None)  # the Trainer's MLflow integration keeps a URI set earlier in the process
    request.addfinalizer(lambda: mlflow.set_tracking_uri(None))
    monkeypatch.delenv("WANDB_DISABLED")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for var, value in (("WANDB_MODE", "offline"), ("WANDB_DIR", str(tmp_path)), ("WANDB_SILENT", "true"),
                       ("WANDB_CONSOLE", "off")):
        monkeypatch.setenv(var, value)
    callback = GradwatchCallback(flush_every=3, report=False)
    trainer = _trainer(tmp_path, [callback], report_to=["wandb", "mlflow"])
    trainer.train()
    import wandb

    run_dir = wandb.run.dir if wandb.run is not None else None
    if wandb.run is not None:
        wandb.run.finish()
    diagnosis = str(callback.watcher.diagnose())
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (tmp_path / "dl").mkdir()
    assert open(client.download_artifacts(run.info.run_id, "gradwatch/diagnosis.txt", str(tmp_path / "dl")),
                encoding="utf-8").read() == diagnosis
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "gradwatch/grad_norm/classifier"))
    assert steps == list(range(1, STEPS + 1))
    (log,) = Path(run_dir).parent.glob("run-*.wandb")  # where W&B put the offline run
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", str(log), "--json"], check=True,
                         capture_output=True, text=True).stdout
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    summary = {k: v for r in records if r.get("type") == "summary" for k, v in r["summary"].get("update", {}).items()}
    assert summary["gradwatch/diagnosis"] == diagnosis
    rows = [r["history"]["item"] for r in records if r.get("type") == "history"]
    ours = sorted(r["train/global_step"] for r in rows if "train/gradwatch/grad_norm/classifier" in r)
    assert ours == list(range(1, STEPS + 1))  # every row arrived, at the Trainer's steps


def test_steps_go_on_across_a_resume_from_a_checkpoint(tmp_path):
    from transformers import Trainer, TrainingArguments

    def trainer(callback):
        args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=STEPS, per_device_train_batch_size=4,
                                 learning_rate=1e-3, save_strategy="steps", save_steps=STEPS // 2, report_to=[],
                                 use_cpu=True, disable_tqdm=True, seed=0)
        return Trainer(model=_bert(), args=args, train_dataset=_dataset(), callbacks=[callback])

    first = GradwatchCallback(report=False)
    trainer(first).train()
    second = GradwatchCallback(report=False)
    resumed = trainer(second)
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / f"checkpoint-{STEPS // 2}"))
    assert first.watcher.history.steps.tolist() == list(range(1, STEPS + 1))
    assert second.watcher.history.steps.tolist() == list(range(STEPS // 2 + 1, STEPS + 1))  # goes on
    assert resumed.state.global_step == STEPS

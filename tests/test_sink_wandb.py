"""The W&B sink against the real wandb, offline: the run's own transaction log (the ``.wandb`` file) is read back
with W&B's reader (``wandb leet inspect --json``). Every recorded step arrives next to the user's own per-step
``wandb.log``, with the values computed by hand; ``stats="full"`` (histograms included) completes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import gradwatch as gw

wandb = pytest.importorskip("wandb", reason="wandb is not installed (gradwatch[wandb])")

STEPS = 30
LAYERS = ["0", "2"]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    yield tmp_path
    if wandb.run is not None:
        wandb.run.finish()


def read_history(run_dir: Path) -> tuple[list[dict], dict]:
    """The history rows and the final summary of an offline run, as W&B's own reader prints its records."""
    (log,) = run_dir.glob("run-*.wandb")
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", str(log), "--json"], check=True,
                         capture_output=True, text=True).stdout
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    rows = [r["history"]["item"] for r in records if r.get("type") == "history"]
    summary: dict = {}
    for r in records:
        if r.get("type") == "summary":
            summary.update(r["summary"].get("update", {}))
    return rows, summary


def _train(stats, sink_of_run, flush_every=7):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 5), torch.randint(0, 2, (16,))
    run = wandb.init(project="gradwatch-test")
    hand = {}
    with gw.watch(model, opt, stats=stats, sample_every=5, flush_every=flush_every, sinks=[sink_of_run(run)]) as w:
        for step in range(STEPS):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            hand[step] = {name: float(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1)
                                                                          for p in model[int(name)].parameters()])))
                          for name in LAYERS}
            opt.step()
            run.log({"loss": loss.item()})  # the user's own per-step log, without step=
    run.finish()
    return w, hand, Path(run.dir).parent


def test_every_gradwatch_row_arrives_next_to_the_users_per_step_log(offline):
    w, hand, run_dir = _train("default", lambda run: gw.sinks.Wandb(run))
    rows, summary = read_history(run_dir)
    ours = {int(r["gradwatch/step"]): r for r in rows if "gradwatch/step" in r}
    assert sorted(ours) == list(range(STEPS))  # all of them (logged with step=, 26 of 30 were dropped here)
    assert sum("loss" in r for r in rows) == STEPS  # and the user's rows too
    for step, row in ours.items():
        for layer in LAYERS:
            assert row[f"gradwatch/grad_norm/{layer}"] == pytest.approx(hand[step][layer], rel=1e-5)
        sampled = step % 5 == 0  # a sampled statistic only where it was taken: no NaN filler
        assert ("gradwatch/weight_norm/0" in row) == sampled
        assert all(not (isinstance(v, float) and math.isnan(v)) for v in row.values())
    assert not any("grad_norm_preclip" in k for r in rows for k in r)  # the loop does not clip: never written
    assert summary["gradwatch/diagnosis"] == str(w.diagnose())


def test_full_statistics_with_histograms_complete(offline):
    w, hand, run_dir = _train("full", lambda run: gw.sinks.Wandb(run))
    rows, _ = read_history(run_dir)
    ours = {int(r["gradwatch/step"]): r for r in rows if "gradwatch/step" in r}
    assert sorted(ours) == list(range(STEPS))
    for step in w.history.hist_steps.tolist():  # every 5th step
        row, key = ours[step], "gradwatch/log10_abs_grad/2"  # W&B's record flattens the histogram's fields
        assert row[f"{key}._type"] == "histogram" and len(row[f"{key}.bins"]) == len(row[f"{key}.values"]) + 1
        assert sum(row[f"{key}.values"]) == 8 * 2 + 2  # every gradient element of the layer, no NaN or zero here
    assert "gradwatch/act_saturation/0" in ours[0]


def test_the_earlier_spelling_is_the_same_sink():
    assert gw.sinks.WandB is gw.sinks.Wandb

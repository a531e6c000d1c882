"""vmap-batched training equals the same runs one by one: lab.train (float32) and a plain torch loop (float64)."""

from __future__ import annotations

import pytest
import torch

from gradwatch.lab import train
from gradwatch.lab.batched import batchable, group_configs, train_batched
from gradwatch.lab.config import Config
from gradwatch.lab.records import train_record

BASE = dict(depth=2, width=16, epochs=2, steps=12, batch_size=32, activation="tanh")


def _members(optimizer: str) -> list[dict]:
    return [Config(**BASE, optimizer=optimizer, lr=lr, seed=s, init="normal", init_std=std).to_dict()
            for lr, std, s in ((0.05, 0.3, 0), (0.2, 0.3, 1), (0.05, 0.1, 1))]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_batched_equals_lab_train_float32(optimizer):
    members = _members(optimizer)
    res = train_batched(members)
    for m, cfg in enumerate(members):
        run = train(Config(**cfg))
        for name, p in run.model.state_dict().items():  # float32 rounding; Adam's m/√v amplifies it where v ≈ 0
            torch.testing.assert_close(res.params[name][m], p, rtol=1e-3, atol=1e-4)
        ref = train_record(cfg)["summary"]          # the watch's grad_norm per layer gives the same ratio
        mine = res.records[m]["summary"]
        for key in ("loss", "accuracy", "test_loss", "test_accuracy", "grad_ratio"):
            assert mine[key] == pytest.approx(ref[key], rel=1e-4), key


def _sequential_float64(cfg: Config) -> dict[str, torch.Tensor]:
    """The same member trained alone with nn.Module + torch.optim in float64 (lab.train's order of draws)."""
    from gradwatch.lab.models import build_model
    from gradwatch.lab.prepare import prepare, task_loss
    from gradwatch.lab.sampling import epoch_order

    d = prepare(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg, d.n_in, d.n_out, generator=gen).double()
    opt = (torch.optim.Adam(model.parameters(), lr=cfg.lr) if cfg.optimizer == "adam" else
           torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.0 if cfg.optimizer == "sgd" else cfg.momentum))
    step = 0
    for _ in range(cfg.epochs):
        for idx in epoch_order(len(d.x_train), cfg.batch_size, True, 0.0, torch.ones(len(d.x_train)), gen):
            opt.zero_grad()
            task_loss(model(d.x_train[idx].double()), d.y_train[idx], cfg.loss_name).backward()
            opt.step()
            step += 1
            if step >= cfg.steps:
                return model.state_dict()
    return model.state_dict()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batched_equals_sequential_float64(optimizer):
    members = _members(optimizer)
    res = train_batched(members, dtype=torch.float64)
    for m, cfg in enumerate(members):
        for name, p in _sequential_float64(Config(**cfg)).items():
            torch.testing.assert_close(res.params[name][m], p, rtol=1e-10, atol=1e-12)


def test_grouping():
    plain = [Config(seed=s, lr=lr, depth=2).to_dict() for s in (0, 1) for lr in (0.1, 0.01)]
    other_depth = Config(depth=3).to_dict()
    normed = Config(norm="batch").to_dict()
    groups = group_configs(plain + [other_depth, normed], max_size=3)
    assert [len(g) for g in groups] == [3, 1, 1, 1]           # max_size splits; depth and batch norm separate
    assert groups[1] == [plain[3]] and groups[3] == [normed]
    assert batchable(Config(norm="batch")) == "normalisation"


def test_members_must_share_the_rest():
    with pytest.raises(ValueError, match="differ only"):
        train_batched([Config(depth=2).to_dict(), Config(depth=3).to_dict()])


def test_a_vmap_sweep_of_512_runs_stores_every_run_under_its_own_id(tmp_path):
    import sqlite3

    from gradwatch.sweep.runner import run_sweep
    from gradwatch.sweep.spec import SweepSpec

    spec = SweepSpec(fixed=dict(depth=1, width=4, epochs=1, steps=1), seeds=list(range(512)))
    outcome = run_sweep(spec, str(tmp_path / "s.sqlite"), workers=1, vmap=True)
    assert (outcome.done, outcome.failed, len(outcome.runs)) == (512, 0, 512)
    con = sqlite3.connect(tmp_path / "s.sqlite")  # read back by SQLite itself: 512 ids, 512 keys, 512 seeds
    assert con.execute("SELECT count(DISTINCT id), count(DISTINCT key), count(DISTINCT seed), count(*) FROM runs"
                       ).fetchone() == (512, 512, 512, 512)
    con.close()

"""Under FSDP2 (``fully_shard``; 2 gloo processes on CPU) every process holds a shard of each gradient; the
watch combines the shards' partial sums with one collective per flush, so each rank's history equals a single
process training on the union of the ranks' batches (the same check as test_ddp.py, for sharded parameters)."""

import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import gradwatch as gw
from gradwatch.probe import History

WORLD, STEPS, BATCH = 2, 4, 16
STATS = ("grad_norm", "grad_abs_mean", "grad_abs_max", "nonfinite", "weight_norm", "update_ratio")


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 9), nn.Tanh(), nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 3))  # odd rows: uneven shards


def _data(step):
    g = torch.Generator().manual_seed(step)
    return torch.randn(BATCH, 5, generator=g), torch.randint(0, 3, (BATCH,), generator=g)


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        from torch.distributed.fsdp import fully_shard

        model = _model()
        for m in model:
            if isinstance(m, nn.Linear):
                fully_shard(m)
        fully_shard(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        half = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        with gw.watch(model, opt, sample_every=1, flush_every=3) as w:
            for step in range(STEPS):
                x, y = _data(step)
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[half]), y[half]).backward()
                opt.step()
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(w.history.to_dict(), f)
    finally:
        dist.destroy_process_group()


def test_fsdp2_statistics_equal_the_unsharded_run_on_the_whole_batch(tmp_path):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available in this build")
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        pytest.skip("this torch has no FSDP2 (torch.distributed.fsdp.fully_shard)")
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [History.from_dict(json.loads((tmp_path / f"rank{r}.json").read_text())) for r in range(WORLD)]

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with gw.watch(model, opt, sample_every=1) as single:
        for step in range(STEPS):
            x, y = _data(step)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    ref = single.history
    assert not ref.meta["sharded"]
    for h in ranks:
        assert h.meta["sharded"]
        assert h.layers == ref.layers == ["0", "2", "4"] and h.steps.tolist() == list(range(STEPS))
        for name in STATS:
            np.testing.assert_allclose(h.stat(name), ref.stat(name), rtol=1e-5, atol=1e-8, err_msg=name)

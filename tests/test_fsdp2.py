"""Under FSDP2 (``fully_shard``; 2 gloo processes on CPU) every process holds a shard of each gradient; the
watch combines the shards' partial sums with one collective per flush, so each rank's history equals a single
process training on the union of the ranks' batches (the same check as test_ddp.py, for sharded parameters)."""

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from distributed import watched_ranks

STEPS, BATCH = 4, 16
STATS = ("grad_norm", "grad_abs_mean", "grad_abs_max", "nonfinite", "weight_norm", "update_ratio")


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 9), nn.Tanh(), nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 3))  # 9 rows: uneven shards


def _data(step):
    g = torch.Generator().manual_seed(step)
    return torch.randn(BATCH, 5, generator=g), torch.randint(0, 3, (BATCH,), generator=g)


def _fully_shard(model):
    from torch.distributed.fsdp import fully_shard

    for m in model:
        if isinstance(m, nn.Linear):
            fully_shard(m)
    return fully_shard(model)


def test_fsdp2_statistics_equal_the_unsharded_run_on_the_whole_batch(tmp_path):
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        pytest.skip("this torch has no FSDP2 (torch.distributed.fsdp.fully_shard)")
    ranks = watched_ranks(tmp_path, _fully_shard, _model, _data, STEPS, sample_every=1, flush_every=3)

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

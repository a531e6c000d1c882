"""Under DistributedDataParallel (2 gloo processes on CPU) the per-layer statistics are those of the all-reduced
gradient: equal to a single process training on the whole batch. Activation statistics are labelled local."""

import numpy as np
import torch
from torch import nn

import gradwatch as gw
from distributed import WORLD, watched_ranks

STEPS, BATCH = 3, 16


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def _data(step):
    g = torch.Generator().manual_seed(step)
    return torch.randn(BATCH, 5, generator=g), torch.randint(0, 3, (BATCH,), generator=g)


def _ddp(model):
    return nn.parallel.DistributedDataParallel(model)


def test_ddp_statistics_equal_the_single_process_all_reduced_ones(tmp_path):
    ranks = watched_ranks(tmp_path, _ddp, _model, _data, STEPS, stats="full", sample_every=1)

    # single process, whole batch: the mean loss over 16 = the average of the two ranks' means over 8
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with gw.watch(model, opt, sample_every=1) as single:
        local_act = []
        for step in range(STEPS):
            x, y = _data(step)
            with torch.no_grad():
                local_act.append(torch.tanh(model[0](x[: BATCH // WORLD])).mean().item())  # rank 0's half, by hand
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    ref = single.history
    for h in ranks:
        assert h.layers == ref.layers == ["0", "2", "4"]
        for name in ("grad_norm", "grad_abs_mean", "grad_abs_max", "weight_norm", "update_ratio", "nonfinite"):
            np.testing.assert_allclose(h.stat(name), ref.stat(name), rtol=1e-5, atol=1e-8, err_msg=name)
    assert ranks[0].meta["activation_scope"] == "local to rank 0 of 2"
    assert ref.meta["activation_scope"] == "global"
    np.testing.assert_allclose(ranks[0].stat("act_mean")[:, 0], local_act, rtol=1e-5)

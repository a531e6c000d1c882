"""Replicas of a DistributedDataParallel model that drift apart (``replica_divergence``): 2 gloo processes on the
CPU, each on its half of every batch; rank 0's findings are judged."""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import gradwatch as gw

from .registry import Case, bug, param_modules

WORLD = 2


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(fc1=nn.Linear(64, 32), ln=nn.LayerNorm(32), act=nn.ReLU(),
                                     fc2=nn.Linear(32, 10)))


def _batch(step: int, rank: int):
    from .loop import data
    x, y = data.digits()
    g = torch.Generator().manual_seed(1000 + step)
    idx = torch.randint(0, len(x), (32,), generator=g)
    half = slice(rank * 16, (rank + 1) * 16)
    return x[idx][half], y[idx][half]


def _bypass(ddp, opt, step, rank):
    """Both ranks train through ``ddp.module``: no gradient is all-reduced."""
    x, y = _batch(step, rank)
    opt.zero_grad()
    nn.functional.cross_entropy(ddp.module(x), y).backward()
    opt.step()


def _plain(ddp, opt, step, rank):
    x, y = _batch(step, rank)
    opt.zero_grad()
    nn.functional.cross_entropy(ddp(x), y).backward()
    opt.step()


def _no_sync_off_by_one(ddp, opt, step, rank, accum: int = 2):
    """Gradient accumulation over 2 micro-batches whose ``no_sync`` condition is off by one: the first micro-batch
    is synchronised, the last one (before the step) is not."""
    opt.zero_grad()
    for i in range(accum):
        x, y = _batch(step * accum + i, rank)
        loss = nn.functional.cross_entropy(ddp(x), y) / accum if i % accum == 0 else None
        if loss is not None:
            loss.backward()
        else:
            with ddp.no_sync():  # the bug: should be the other way round
                (nn.functional.cross_entropy(ddp(x), y) / accum).backward()
    opt.step()


LOOPS = {"bypass": _bypass, "plain": _plain, "no_sync": _no_sync_off_by_one}


def _rank(rank: int, init: str, out: str, loop: str, ignore: tuple[str, ...], steps: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=WORLD)
    try:
        model = _model()
        if ignore:
            nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, list(ignore))
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
        with gw.watch(ddp, opt) as w:
            for step in range(steps):
                LOOPS[loop](ddp, opt, step, rank)
        findings = [f.to_dict() for f in w.diagnose().findings]
        if rank == 0:
            with open(out, "w") as f:
                json.dump(findings, f)
    finally:
        dist.destroy_process_group()


def run_ranks(loop: str, steps: int, ignore: tuple[str, ...] = ()) -> list[dict]:
    """Rank 0's findings of ``loop`` run for ``steps`` optimizer steps in 2 gloo processes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "findings.json")
        mp.spawn(_rank, args=(os.path.join(tmp, "init"), out, loop, ignore, steps), nprocs=WORLD, join=True)
        with open(out) as f:
            return json.load(f)


@bug("jxmnop_ddp_bypassed", "replica_divergence", step=1)
def ddp_bypassed(steps: int) -> Case:
    """DDP on 2 ranks where the training step calls the unwrapped model (``ddp.module``), as when a trainer hands
    back the module sometimes and the DDP wrapper other times: gradients are never all-reduced and the replicas
    drift apart from the first update (reported by @jxmnop, reproduced as x-jxmnop-ddp-out-of-sync in TrainCheck,
    OSDI '25). Every layer, from step 1."""
    return Case(run_ranks("bypass", steps), tuple(param_modules(_model())))


@bug("bloom_ds1801_layernorm_out_of_sync", "replica_divergence", step=1)
def layernorm_out_of_sync(steps: int) -> Case:
    """DDP on 2 ranks whose LayerNorm parameters are left out of the gradient all-reduce, so each rank applies its
    local LayerNorm gradient: the layer-norm weights of BLOOM-176B drifted apart across ranks the same way
    (bigscience-workshop/Megatron-DeepSpeed pull #270, "script to reproduce diverging layer_norm weights", and
    #274 "sync layer norms"; DeepSpeed-1801 in TrainCheck, OSDI '25). ln only, from step 1."""
    return Case(run_ranks("plain", steps, ignore=("ln.weight", "ln.bias")), ("ln",))


@bug("funasr3472_no_sync_off_by_one", "replica_divergence", step=1)
def no_sync_off_by_one(steps: int) -> Case:
    """DDP on 2 ranks with gradient accumulation whose ``no_sync()`` condition is off by one: the micro-batch
    before the optimizer step is not all-reduced, "leaving rank-local accumulated gradients" (modelscope/FunASR
    pull #3472). Every layer, from step 1."""
    return Case(run_ranks("no_sync", steps), tuple(param_modules(_model())))

"""Training the same small model in 2 gloo processes on the CPU, each on its half of every batch, under a watch;
each rank's history comes back for the test to compare with a single process on the whole batch."""

import json
import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import gradwatch as gw
from gradwatch.probe import History

WORLD = 2


def _train_rank(rank, init_file, out_dir, wrap, make_model, make_data, steps, options):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        model = wrap(make_model())
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        with gw.watch(model, opt, **options) as w:
            for step in range(steps):
                x, y = make_data(step)
                half = slice(rank * len(x) // WORLD, (rank + 1) * len(x) // WORLD)
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[half]), y[half]).backward()
                opt.step()
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(w.history.to_dict(), f)
    finally:
        dist.destroy_process_group()
    # The rank's result is written. Leave without running the interpreter's and C++ static teardown: with FSDP2 on
    # gloo (torch 2.13, CPU) that teardown aborts now and then ("terminate called without an active exception",
    # measured: 4 of 12 runs with the watch, 3 of 12 without it, always after both ranks had written their results).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def watched_ranks(tmp_path, wrap, make_model, make_data, steps, **options) -> list[History]:
    """Each rank's history (``wrap`` turns the model into DDP, FSDP2, …; all three are module-level functions)."""
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available in this build")
    mp.spawn(_train_rank, args=(str(tmp_path / "init"), str(tmp_path), wrap, make_model, make_data, steps, options),
             nprocs=WORLD, join=True)
    return [History.from_dict(json.loads((tmp_path / f"rank{r}.json").read_text())) for r in range(WORLD)]

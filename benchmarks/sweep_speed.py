"""Sweep speed: 32 small MLPs trained one by one against the same 32 trained as one vmapped model (not a test).

The 32 runs are a sweep of 8 seeds × 4 learning rates of one small MLP on the digits (depth 3, width 64, tanh,
SGD, batch 64, the same step budget each). Three ways, timed end to end (data preparation included), reported
side by side with their speed-ups:

- ``lab.train`` one by one — what ``gradwatch sweep`` does without ``--vmap`` (the watch attached);
- a plain PyTorch loop one by one (``nn.Module`` + ``torch.optim``, no watch) — the fastest unbatched baseline;
- ``gradwatch.lab.batched.train_batched`` — the 32 as one ``vmap`` over ``stack_module_state``.

On a GPU (``--device cuda``) the same comparison runs there.

    PYTHONPATH=src python benchmarks/sweep_speed.py [--steps 300] [--threads 2] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from gradwatch.lab import train  # noqa: E402
from gradwatch.lab.batched import train_batched  # noqa: E402
from gradwatch.lab.config import Config  # noqa: E402

SEEDS, LRS = range(8), (0.01, 0.03, 0.1, 0.3)


def configs(steps: int, device: str) -> list[Config]:
    return [Config(depth=3, width=64, activation="tanh", init="xavier_normal", optimizer="sgd", lr=lr, seed=s,
                   batch_size=64, epochs=100, steps=steps, device=device) for s in SEEDS for lr in LRS]


def plain_loop(cfg: Config) -> None:
    """One run with nn.Module + torch.optim and nothing else (lab.train's data, init and batch order)."""
    from gradwatch.lab.models import build_model
    from gradwatch.lab.prepare import prepare, task_loss
    from gradwatch.lab.sampling import epoch_order

    d = prepare(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg, d.n_in, d.n_out, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    step = 0
    while step < cfg.steps:
        for idx in epoch_order(len(d.x_train), cfg.batch_size, True, 0.0, torch.ones(len(d.x_train)), gen):
            opt.zero_grad(set_to_none=True)
            task_loss(model(d.x_train[idx.to(d.x_train.device)]), d.y_train[idx.to(d.y_train.device)],
                      cfg.loss_name).backward()
            opt.step()
            step += 1
            if step >= cfg.steps:
                break


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps per run")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (on a 2-core machine busy "
                                                          "with other work, use 1: 2 threads then slow small nets "
                                                          "down many times)")
    ap.add_argument("--repeats", type=int, default=3, help="timings per way (median reported)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfgs = configs(args.steps, args.device)
    dicts = [c.to_dict() for c in cfgs]
    ways = {
        "lab.train one by one": lambda: [train(c) for c in cfgs],
        "plain torch loop one by one": lambda: [plain_loop(c) for c in cfgs],
        "vmap-batched (one model)": lambda: train_batched(dicts),
    }
    train(cfgs[0]), plain_loop(cfgs[0]), train_batched(dicts[:2])  # warm-up: imports and lazy initialisation
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits every way alike
        for name, fn in ways.items():
            times[name].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    batched = med["vmap-batched (one model)"]
    print(f"{len(cfgs)} MLPs (3×64 tanh, digits, SGD, batch 64, {args.steps} steps each) on {args.device}, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"{'way':<30} {'seconds':>8} {'runs/s':>8} {'vmap speed-up':>14}")
    for name, t in med.items():
        print(f"{name:<30} {t:>8.2f} {len(cfgs) / t:>8.1f} {t / batched:>13.1f}×")


if __name__ == "__main__":
    main()

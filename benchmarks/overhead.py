"""Overhead of watching a training step, each configuration measured against its own plain twin (not a test).

Every configuration trains its own copy of the same model on the same batches, step by step in turn with a plain
copy of its own (the twin; who goes first alternates every step), so that a drift of the machine's load hits both
alike. That is repeated (``--repeats``, fresh models each time); each repeat gives the ratio of the mean step
times and of the median step times of the configuration to its twin. Printed: the median over repeats of each
ratio with its spread (the lowest and highest repeat). Work done every N steps (a flush, a sampled step) shows in
the mean, not in the median. A configuration whose spread is wider than its distance from 1.0 is marked "~":
on this machine, in this run, its overhead is not resolved.

Configurations: ``gw.watch`` with the default statistics (every step; ``every=10``; ``sample_every=50``; without the
end-of-backward pre-clip measurement, to show what it costs); ``stats="full", sample_every=10`` (and without
``grad_dead``, which it measures on every step, to show what that costs); ``on_nonfinite="locate"``; a
per-layer ``.item()`` of the gradient norm (the naive way); one fused norm of every parameter's gradient in the
optimizer's pre-hook, kept on the device (the floor: the least an every-step per-parameter norm costs);
TensorBoard ``add_histogram`` of every parameter gradient; ``wandb.watch(log="gradients", log_freq=1)`` offline.
The last two run only when their packages are installed.

    PYTHONPATH=src python benchmarks/overhead.py [--steps 200] [--repeats 5] [--threads 1] [--models mlp,tiny]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import sys
import tempfile
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import gradwatch as gw  # noqa: E402
from gradwatch.probe.stats import ALL_STATS, DEFAULT_STATS  # noqa: E402


def mlp(depth=20, width=256):
    layers = [nn.Linear(width, width) if i % 2 == 0 else nn.ReLU() for i in range(2 * depth)]
    return nn.Sequential(*layers, nn.Linear(width, 10)), (lambda g: (torch.randn(128, width, generator=g),
                                                                    torch.randint(0, 10, (128,), generator=g)))


def tiny():
    """The teaching case: 64 → 10 × 100 sigmoid → 10 on sklearn's digits (a step of about a millisecond)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target)
    layers = [nn.Linear(64, 100), nn.Sigmoid()] + [m for _ in range(9) for m in (nn.Linear(100, 100), nn.Sigmoid())]
    return nn.Sequential(*layers, nn.Linear(100, 10)), (
        lambda g: (lambda i: (x[i], y[i]))(torch.randint(0, len(x), (64,), generator=g)))


class Encoder(nn.Module):
    def __init__(self, d=128, heads=4, layers=4, vocab=10):
        super().__init__()
        self.embed = nn.Linear(16, d)
        block = nn.TransformerEncoderLayer(d, heads, dim_feedforward=4 * d, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, vocab)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(1))


def transformer():
    return Encoder(), (lambda g: (torch.randn(32, 32, 16, generator=g), torch.randint(0, 10, (32,), generator=g)))


class Config:
    """One way of running a step; ``setup`` returns a context that is open while it trains."""

    def __init__(self, name, model, optimizer_name="adam"):
        self.name, self.model = name, model
        self.opt = (torch.optim.Adam(model.parameters(), lr=1e-4) if optimizer_name == "adam"
                    else torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9))
        self.times: list[float] = []
        self.after_backward = None
        self.after_step = None

    def step(self, x, y):
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        if self.after_backward:
            self.after_backward()
        self.opt.step()
        if self.after_step:
            self.after_step(loss)
        self.times.append(time.perf_counter() - t0)


def build(base, which, optimizer_name, stack: contextlib.ExitStack, tmp: str):
    cfg = Config(which, copy.deepcopy(base), optimizer_name)
    if which == "default watch":
        stack.enter_context(gw.watch(cfg.model, cfg.opt))
    elif which == "default watch every=10":
        stack.enter_context(gw.watch(cfg.model, cfg.opt, every=10))
    elif which == "default watch without pre-clip":
        stats = [n for n in DEFAULT_STATS if n != "grad_norm_preclip"]
        stack.enter_context(gw.watch(cfg.model, cfg.opt, stats=stats))
    elif which == "locate":
        stack.enter_context(gw.watch(cfg.model, cfg.opt, on_nonfinite="locate"))
    elif which == "full watch /10":
        stack.enter_context(gw.watch(cfg.model, cfg.opt, stats="full", sample_every=10))
    elif which == "default watch sample_every=50":  # the default statistics of sampled steps 5× less often
        stack.enter_context(gw.watch(cfg.model, cfg.opt, sample_every=50))
    elif which == "full watch /10 without grad_dead":  # what the every-step grad_dead costs, by difference
        stats = [n for n in ALL_STATS if n != "grad_dead"]
        stack.enter_context(gw.watch(cfg.model, cfg.opt, stats=stats, sample_every=10))
    elif which == "per-layer .item()":
        layers = [m for m in cfg.model.modules() if any(True for _ in m.parameters(recurse=False))]
        log = []

        def items():
            for m in layers:
                log.append(torch.linalg.vector_norm(
                    torch.cat([p.grad.reshape(-1) for p in m.parameters(recurse=False)])).item())
            del log[:-1000]
        cfg.after_backward = items
    elif which == "one fused norm by hand":  # the floor: the least any per-layer, every-step gradient norm costs
        params = list(cfg.model.parameters())
        kept = []

        def fused(*_):
            kept.append(torch.stack(torch._foreach_norm([p.grad for p in params])))
            del kept[:-1000]
        cfg.opt.register_step_pre_hook(fused)
    elif which == "tensorboard hist":
        from torch.utils.tensorboard import SummaryWriter

        writer = stack.enter_context(SummaryWriter(os.path.join(tmp, "tb")))
        count = [0]

        def histograms():
            for name, p in cfg.model.named_parameters():
                writer.add_histogram(name, p.grad, count[0])
            count[0] += 1
        cfg.after_backward = histograms
    elif which == "wandb.watch":
        import wandb

        os.environ["WANDB_MODE"] = "offline"
        os.environ.setdefault("WANDB_SILENT", "true")
        run = wandb.init(dir=tmp, project="gradwatch-overhead", mode="offline", reinit=True)
        stack.callback(run.finish)
        wandb.watch(cfg.model, log="gradients", log_freq=1)
        cfg.after_step = lambda loss: run.log({"loss": loss.item()})
    return cfg


def available(which: str) -> bool:
    try:
        if which == "tensorboard hist":
            import tensorboard  # noqa: F401
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        elif which == "wandb.watch":
            import wandb  # noqa: F401
    except ImportError:
        return False
    return True


CONFIGS = ["default watch", "default watch every=10", "default watch sample_every=50", "default watch without pre-clip",
           "full watch /10", "full watch /10 without grad_dead", "locate", "per-layer .item()",
           "one fused norm by hand", "tensorboard hist", "wandb.watch"]


def _spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def measure(model_name: str, steps: int, warmup: int, optimizer_name: str, repeats: int,
            names: list[str]) -> list[dict]:
    """Per configuration: its mean and median step time (ms, median over repeats) and the ratios to its twin."""
    base, batch = {"mlp": mlp, "transformer": transformer, "tiny": tiny}[model_name]()
    g = torch.Generator().manual_seed(0)
    data = [batch(g) for _ in range(8)]
    rows = []
    for name in names:
        mean_ratios, median_ratios, means, medians = [], [], [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
                twin, cfg = build(base, "plain", optimizer_name, stack, tmp), build(base, name, optimizer_name, stack,
                                                                                 tmp)
                for i in range(warmup + steps):
                    pair = (twin, cfg) if i % 2 == 0 else (cfg, twin)
                    for c in pair:
                        c.step(*data[i % len(data)])
            mine, plain = cfg.times[warmup:], twin.times[warmup:]
            mean_ratios.append(statistics.fmean(mine) / statistics.fmean(plain))
            median_ratios.append(statistics.median(mine) / statistics.median(plain))
            means.append(statistics.fmean(mine) * 1e3)
            medians.append(statistics.median(mine) * 1e3)
        rows.append({"name": name, "mean_ms": statistics.median(means), "median_ms": statistics.median(medians),
                     "mean_ratio": _spread(mean_ratios), "median_ratio": _spread(median_ratios)})
    return rows


def _ratio(r: tuple[float, float, float]) -> str:
    mid, lo, hi = r
    resolved = (hi - lo) / 2 < abs(mid - 1.0)
    return f"{mid:.3f}× ({lo:.3f}–{hi:.3f}){'' if resolved else ' ~'}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--models", default="mlp,tiny,transformer")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, from: " + ", ".join(CONFIGS))
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or args.steps < 1 or args.repeats < 1:
        ap.error(f"--configs: unknown {unknown}" if unknown else "--steps and --repeats must be at least 1")
    names = [n for n in names if available(n)]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), optimizer {args.optimizer}; each configuration "
          f"against its own plain twin, {args.steps} interleaved steps after {args.warmup} warm-up steps, "
          f"{args.repeats} repeats: median over repeats (lowest–highest); ~ = spread wider than the effect")
    for model_name in args.models.split(","):
        label = {"mlp": "MLP 20×256, batch 128", "transformer": "TransformerEncoder 4×d128, batch 32×32",
                 "tiny": "sigmoid MLP 64 → 10×100 → 10 on digits, batch 64"}[model_name]
        print(f"\n{label}\n| configuration | mean step (ms) | median step (ms) | mean / twin's | median / twin's |"
              "\n|---|---:|---:|---:|---:|")
        for row in measure(model_name, args.steps, args.warmup, args.optimizer, args.repeats, names):
            print(f"| {row['name']} | {row['mean_ms']:.2f} | {row['median_ms']:.2f} | {_ratio(row['mean_ratio'])} | "
                  f"{_ratio(row['median_ratio'])} |")


if __name__ == "__main__":
    main()

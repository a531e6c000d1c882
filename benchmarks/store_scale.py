"""The run store at scale: how the time to read a long run back and to ``gradwatch show`` it grows with its
length, and the bytes it takes per step (not a test).

For each length N (``--steps``), a real watched run is recorded first: a small MLP (4 linear layers, tanh) on
random data, ``gw.watch(model, opt, stats=..., store=...)``, for ``--base`` steps. Its stored history rows are
then repeated, step numbers shifted, until the run has N steps (the same statistics, the same sampled steps,
the same values) — a run of N steps without training N steps. Then, ``--repeats`` times each:

- ``read``: ``RunStore(path).history(run_id)`` (one array per statistic),
- ``load``: ``gradwatch.store.watched.load_history`` (the bounded ``History`` that ``show`` and reports use),
- ``show``: ``gradwatch show RUN --store PATH`` run in this process (output discarded).

It prints the median and the spread (min–max) of each, the ratio of the longest to the shortest length (linear
when it is about the ratio of the lengths) and the store's size per step.

    PYTHONPATH=src python benchmarks/store_scale.py [--steps 4000,40000] [--repeats 3] [--stats full]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import gradwatch as gw  # noqa: E402
from gradwatch.cli import main  # noqa: E402
from gradwatch.store import RunStore  # noqa: E402
from gradwatch.store.watched import load_history  # noqa: E402


def record_base(path: Path, steps: int, stats: str) -> str:
    """A real watched run of ``steps`` steps in the store at ``path``; returns its id."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                                torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(256, 32), torch.randint(0, 10, (256,))
    with gw.watch(model, opt, stats=stats, store=str(path), name="scale") as w:
        for i in range(steps):
            idx = torch.arange(i * 32, i * 32 + 32) % 256
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        run_id = w._outputs.run_id
    return run_id


def lengthen(path: Path, run_id: str, base: int, steps: int) -> None:
    """Repeat the run's stored history rows, step numbers shifted by ``base``, until it has ``steps`` steps."""
    con = sqlite3.connect(path)
    rows = con.execute("SELECT stat, step, layer, value FROM history WHERE run_id = ?", (run_id,)).fetchall()
    with con:
        for shift in range(base, steps, base):
            con.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?)",
                            [(run_id, stat, step + shift, layer, value) for stat, step, layer, value in rows
                             if step + shift < steps])
    con.close()


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def measure(n: int, base: int, stats: str, repeats: int, tmp: Path) -> dict[str, object]:
    path = tmp / f"runs-{n}.sqlite"
    run_id = record_base(path, base, stats)
    lengthen(path, run_id, base, n)
    with sqlite3.connect(path) as con:
        con.execute("VACUUM")
    size = path.stat().st_size

    def read() -> None:
        with RunStore(path, readonly=True) as db:
            db.history(run_id)

    def load() -> None:
        with RunStore(path, readonly=True) as db:
            load_history(db, run_id)

    def show() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["show", run_id, "--store", str(path)]) == 0

    with RunStore(path, readonly=True) as db:
        h = db.history(run_id)
        assert len(h["steps"]) == n, (len(h["steps"]), n)
    return {"steps": n, "bytes_per_step": size / n, "read": timed(read, repeats), "load": timed(load, repeats),
            "show": timed(show, repeats)}


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="4000,40000", help="Run lengths, comma-separated (default 4000,40000).")
    ap.add_argument("--base", type=int, default=200, help="Steps actually trained and watched (default 200).")
    ap.add_argument("--stats", default="full", help="The watch's statistics: default or full (default full).")
    ap.add_argument("--repeats", type=int, default=3, help="Timings per measurement (default 3).")
    args = ap.parse_args()
    lengths = [int(s) for s in args.steps.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            r = measure(n, args.base, args.stats, args.repeats, Path(tmp))
            results.append(r)
            print(f"{n:>7} steps  {r['bytes_per_step']:7.0f} B/step  " + "  ".join(
                f"{k} {statistics.median(r[k]):6.2f} s ({min(r[k]):.2f}–{max(r[k]):.2f})"
                for k in ("read", "load", "show")), flush=True)
    first, last = results[0], results[-1]
    print(f"ratio {last['steps']} / {first['steps']} steps = {last['steps'] / first['steps']:.0f}×: " + ", ".join(
        f"{k} {statistics.median(last[k]) / statistics.median(first[k]):.1f}×" for k in ("read", "load", "show")))


if __name__ == "__main__":
    main_()

"""A classroom against one ``gradwatch serve`` (not a test): watchers on streams and students starting runs.

One server process on 127.0.0.1 (``create_app`` + uvicorn, default limits, its own temporary run store seeded
with a few finished runs). For ``--seconds`` (60):

- ``--watchers`` (30) clients each loop: load a page, the runs list and one stored run, then follow the event
  stream of a running playground run for a few seconds;
- one client sends the requests that once froze or killed the server (``{"depth": 1000000000}``, a
  400-digit integer, 8000-deep JSON, a 200 MB chunked body, …) in a loop;
- ``--starters`` (10) clients each loop: start two small trainings as a preset does (the paralysis net with
  sigmoid and with ReLU, 150 steps each), follow both streams to the end, start again. Each starter connects
  from its own loopback address (127.0.0.11, …), as students' machines would, so the per-client limit applies
  per student; the queue's limit applies to all.

Reported: p50 / p95 / max latency per kind of request (pages, API, starts, the first event of a stream), the
answers by status (429: the queue or a client's share full), client errors (timeouts, resets) and server errors
(5xx), and the server's resident memory at the start, its peak and at the end, and the peak of the server with its
training processes (sampled from /proc every 0.5 s).
The benchmark bounds itself: clients stop at ``--seconds``, every request has a timeout, and the server is
stopped (its trainings with it) at the end.

    PYTHONPATH=src python benchmarks/serve_load.py [--seconds 60] [--watchers 30] [--starters 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).resolve().parent.parent / "src"
START = {"depth": 5, "width": 100, "activation": "sigmoid", "init": "normal", "init_std": 0.0577, "optimizer": "sgd",
         "lr": 0.1, "batch_size": 32, "steps": 150}
TIMEOUT_S = 30.0       # any one request
FOLLOW_S = 4.0         # a watcher follows a stream this long, then moves on
SERVER = """
import sys, uvicorn
from gradwatch.web import create_app
app = create_app(sys.argv[1])
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", timeout_graceful_shutdown=5)
uvicorn.Server(config).run()
"""


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # the process ended meanwhile
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(the server process, the server with its process server and training processes) resident memory."""
    todo, total = [pid], 0.0
    while todo:
        p = todo.pop()
        total += rss_mb(p)
        todo += children(p)
    return rss_mb(pid), total


class Tally:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: Counter[tuple[str, int]] = Counter()
        self.errors: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()

    def add(self, kind: str, seconds: float, status: int) -> None:
        self.latency[kind].append(seconds)
        self.status[(kind, status)] += 1


async def timed(tally: Tally, kind: str, call) -> httpx.Response | None:
    t = time.perf_counter()
    try:
        res = await call()
    except httpx.HTTPError as exc:
        tally.errors[f"{kind}: {type(exc).__name__}"] += 1
        return None
    tally.add(kind, time.perf_counter() - t, res.status_code)
    return res


async def follow(client: httpx.AsyncClient, tally: Tally, job_id: str, limit_s: float | None, kind: str) -> None:
    """Read a run's stream (to its end, or for ``limit_s`` seconds); the first event's latency is recorded."""
    t = time.perf_counter()
    first = True
    try:
        async with client.stream("GET", f"/api/playground/{job_id}/events", timeout=TIMEOUT_S) as res:
            if res.status_code != 200:
                tally.add(kind, time.perf_counter() - t, res.status_code)
                return
            async for line in res.aiter_lines():
                if first and line.startswith("event: step"):
                    tally.add(kind, time.perf_counter() - t, 200)
                    first = False
                if line == "event: end" or (limit_s is not None and time.perf_counter() - t > limit_s):
                    return
    except httpx.HTTPError as exc:
        tally.errors[f"stream: {type(exc).__name__}"] += 1


async def watcher(url: str, tally: Tally, until: float, run_ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S) as c:
        while time.monotonic() < until:
            await timed(tally, "page", lambda: c.get(random.choice(["/", "/playground", f"/runs/{run_ids[0]}"])))
            await timed(tally, "api list", lambda: c.get("/api/runs"))
            await timed(tally, "api run", lambda: c.get(f"/api/runs/{random.choice(run_ids)}"))
            jobs = await timed(tally, "api list", lambda: c.get("/api/playground"))
            running = [j["id"] for j in (jobs.json() if jobs is not None and jobs.status_code == 200 else [])
                       if j["state"] == "running"]
            if running:
                await follow(c, tally, random.choice(running), FOLLOW_S, "watch: first event")
            else:
                await asyncio.sleep(0.5)


async def starter(url: str, tally: Tally, until: float, address: str) -> None:
    """Start run A and run B as the playground's presets do, follow both to their end, start again."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S, transport=transport) as c:
        while time.monotonic() < until:
            started = []
            for cfg in (START, {**START, "activation": "relu", "init": "he_normal"}):
                res = await timed(tally, "start run", lambda cfg=cfg: c.post("/api/playground", json=cfg))
                if res is not None and res.status_code == 201:
                    started.append(res.json()["id"])
                elif res is not None and res.status_code == 429:
                    tally.refusals["queue full" if "waiting" in res.text else "client's share full"] += 1
            await asyncio.gather(*(follow(c, tally, job, max(0.1, until - time.monotonic()),
                                          "own run: first step (queue incl.)") for job in started))
            if not started:
                await asyncio.sleep(1.0)


HOSTILE = [b'{"depth": 1000000000}', b'{"depth": 100000000}', b'{"sizes": [1000000000, 1000000000]}',
           b'{"depth": ' + b"9" * 400 + b"}", b"[" * 8000 + b"]" * 8000, b'{"depth": 64, "width": 1024}']


async def hostile(url: str, tally: Tally, until: float) -> None:
    """One careless or hostile client: the requests that once froze or killed the server, in a loop."""
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S) as c:
        while time.monotonic() < until:
            for body in HOSTILE:
                await timed(tally, "hostile body (422)", lambda body=body: c.post(
                    "/api/playground", content=body, headers={"Content-Type": "application/json"}))
            await timed(tally, "hostile chunked 200 MB (413)", lambda: c.post(
                "/api/playground", content=_chunks(200 * 2**20), headers={"Content-Type": "application/json"}))
            await asyncio.sleep(0.2)


async def _chunks(total: int):
    chunk = b" " * 65536
    for _ in range(total // len(chunk)):
        yield chunk


async def sample_memory(pid: int, until: float, out: list[tuple[float, float]]) -> None:
    while time.monotonic() < until:
        out.append(tree_rss_mb(pid))
        await asyncio.sleep(0.5)


def seed_store(path: Path) -> list[str]:
    sys.path.insert(0, str(SRC))
    from gradwatch import lab

    return [lab.train(lab.Config(depth=d, width=32, steps=40, epochs=2, batch_size=64), store=path).id
            for d in (2, 5, 10)]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else (values[0] if values else float("nan"))


def start_server(store: Path, log: Any) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(store), str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/api/runs", timeout=2)
            return server, url
        except httpx.HTTPError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the server did not start") from None
            time.sleep(0.2)


async def main_async(args: argparse.Namespace, server: subprocess.Popen, url: str, run_ids: list[str]) -> dict:
    try:
        tally, memory = Tally(), [tree_rss_mb(server.pid)]
        until = time.monotonic() + args.seconds
        tasks = [watcher(url, tally, until, run_ids) for _ in range(args.watchers)]
        tasks += [starter(url, tally, until, f"127.0.0.{11 + i}") for i in range(args.starters)]
        tasks.append(sample_memory(server.pid, until, memory))
        tasks.append(hostile(url, tally, until))
        cpu0, t0 = (cpu_s(server.pid), cpu_s(os.getpid())), time.monotonic()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.seconds + 2 * TIMEOUT_S)
        memory.append(tree_rss_mb(server.pid))
        wall = time.monotonic() - t0
        cpu = {"server": (cpu_s(server.pid) - cpu0[0]) / wall, "clients": (cpu_s(os.getpid()) - cpu0[1]) / wall}
        load = os.getloadavg()[0]
    finally:
        server.send_signal(signal.SIGTERM)  # uvicorn's graceful shutdown stops the trainings
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    kinds = sorted(tally.latency)
    return {
        "seconds": args.seconds, "watchers": args.watchers, "starters": args.starters,
        "latency_s": {k: {"n": len(tally.latency[k]), "p50": pct(tally.latency[k], 50),
                          "p95": pct(tally.latency[k], 95), "max": max(tally.latency[k])} for k in kinds},
        "status": {f"{k} {s}": n for (k, s), n in sorted(tally.status.items())},
        "server_errors": sum(n for (_, s), n in tally.status.items() if s >= 500),
        "client_errors": dict(tally.errors), "refusals_429": dict(tally.refusals),
        "memory_mb": {"start": memory[0][0], "peak": max(m[0] for m in memory), "end": memory[-1][0],
                      "with_trainings_peak": max(m[1] for m in memory)},
        "cpu_cores_used": cpu, "load_average_1min": load, "server_exit": server.returncode,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--watchers", type=int, default=30)
    ap.add_argument("--starters", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gradwatch-load-"))
    run_ids = seed_store(tmp / "runs.sqlite")
    with (tmp / "server.log").open("w") as log:
        server, url = start_server(tmp / "runs.sqlite", log)
        out = asyncio.run(main_async(args, server, url, run_ids))
    server_log = (tmp / "server.log").read_text(errors="replace").splitlines()
    out.update(server_log_lines=len(server_log),
               server_log_kinds=dict(Counter(line.strip()[:60] for line in server_log).most_common(5)))
    print(f"{args.watchers} watchers + {args.starters} starters for {args.seconds:g} s against one server")
    print(f"{'request':<36}{'n':>7}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for k, v in out["latency_s"].items():
        print(f"{k:<36}{v['n']:>7}{v['p50']:>9.3f}{v['p95']:>9.3f}{v['max']:>9.3f}")
    print("answers:", ", ".join(f"{k}: {n}" for k, n in out["status"].items()))
    print("429 refusals:", out["refusals_429"] or "none", "| server errors (5xx):", out["server_errors"],
          "| client errors:", out["client_errors"] or "none")
    m = out["memory_mb"]
    print(f"server memory (RSS): start {m['start']:.0f} MB, peak {m['peak']:.0f} MB, end {m['end']:.0f} MB; with its "
          f"training processes at most {m['with_trainings_peak']:.0f} MB; server exit code {out['server_exit']}")
    print(f"cores used: server {out['cpu_cores_used']['server']:.2f}, clients {out['cpu_cores_used']['clients']:.2f} "
          f"(the machine's load average at the end: {out['load_average_1min']:.1f}, {os.cpu_count()} cores)")
    print(f"server log: {out['server_log_lines']} lines", out["server_log_kinds"] or "")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

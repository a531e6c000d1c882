"""gradwatch sweep: specs, keys, a 2 × 2 × 2-seed sweep, resume after SIGKILL, Ray against the process pool."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from test_sweep_workers import _session

from gradwatch.cli import main
from gradwatch.errors import ConfigError
from gradwatch.lab.config import Config
from gradwatch.store import RunStore
from gradwatch.sweep import config_key, run_key
from gradwatch.sweep import spec as specs

TINY = ["--epochs", "1", "--steps", "4", "--width", "8", "--batch-size", "32"]  # ~0.2 s a run
GRID = ["--param", "depth=1,2", "--param", "lr=0.01,0.1", "--seeds", "2"]


def _sweep(tmp_path, *extra: str, store: str = "runs.sqlite", flags=tuple(TINY)) -> dict:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["sweep", *GRID, *flags, "--store", str(tmp_path / store), "--json", *extra])
    assert rc == 0
    return json.loads(buf.getvalue())


def _rows(path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT key, status FROM runs").fetchall()


# --- specs ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("depth=range:2:8:2", [2, 4, 6, 8]),                       # inclusive stop
    ("lr=log:1e-3:1e-1:3", [1e-3, 1e-2, 1e-1]),                # by hand: decades
    ("init_std=lin:0.1:0.3:3", [0.1, 0.2, 0.3]),
    ("width=log:10:1000:3", [10, 100, 1000]),                  # integers rounded
    ("activation=tanh,relu", ["tanh", "relu"]),
    ("sizes=100,50;20", [[100, 50], [20]]),                    # list fields: ';' between values
    ("clip-norm=none,1", [None, 1]),
], ids=["range", "log", "lin", "int-log", "strings", "lists", "none"])
def test_parse_param(text, expected):
    _, values = specs.parse_param(text)
    assert values == pytest.approx(expected) if isinstance(expected[0], float) else values == expected


@pytest.mark.parametrize("text, named", [("colour=red", "param"), ("depth", "param"), ("lr=log:0:1:3", "lr"),
                                         ("depth=range:5:1:1", "depth")],
                         ids=["unknown-field", "no-equals", "log-of-zero", "empty-range"])
def test_bad_param_names_it(text, named):
    with pytest.raises(ConfigError) as e:
        specs.parse_param(text)
    assert e.value.param == named


def test_bad_value_is_caught_before_running(tmp_path, capsys):
    rc = main(["sweep", "--param", "depth=2,0", "--store", str(tmp_path / "s.sqlite")])
    assert rc == 2 and "depth" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()


def test_sweep_file_toml_and_cli_override(tmp_path):
    f = tmp_path / "sweep.toml"
    f.write_text('seeds = 2\n[fixed]\nepochs = 3\nactivation = "tanh"\n[params]\ndepth = [1, 2]\n'
                 'lr = "log:1e-3:1e-1:3"\n')
    spec = specs.merge(specs.from_file(f), ["depth=4"], {"epochs": 1})
    cfgs = spec.configs()
    assert len(cfgs) == 1 * 3 * 2
    assert {c.depth for c in cfgs} == {4} and {c.epochs for c in cfgs} == {1}
    assert {c.activation for c in cfgs} == {"tanh"} and {c.seed for c in cfgs} == {0, 1}


def test_keys_are_config_plus_seed():
    a, b = Config(depth=3, seed=1), Config(seed=1)          # depth 3 is the default: the same run
    assert run_key(a) == run_key(b) == run_key({"seed": 1})
    assert run_key(Config(seed=2)) != run_key(b)
    assert config_key(b.to_dict()) == run_key(b)               # a stored config hashes to its key


# --- store: keys, retries, migration ----------------------------------------------------------------------------
def test_retry_replaces_failed_and_interrupted(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as db:
        cfg = Config(seed=3)
        for i, status in enumerate(("failed", "interrupted", "completed")):
            db.start_run(f"r{i}", cfg)
            db.finish_run(f"r{i}", status)
        rows = _rows(tmp_path / "s.sqlite")
    assert rows == [(run_key(cfg), "completed")]


def test_old_store_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    cfg = Config(seed=5).to_dict()
    with sqlite3.connect(path) as conn:  # the schema before run keys
        conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, config TEXT NOT NULL, seed INTEGER, status TEXT NOT "
                     "NULL, started REAL NOT NULL, ended REAL, gradwatch_version TEXT, torch_version TEXT, pid "
                     "INTEGER, host TEXT, summary TEXT, error TEXT)")
        conn.execute("INSERT INTO runs (id, config, seed, status, started) VALUES ('old', ?, 5, 'completed', 1)",
                     (json.dumps(cfg),))
    with RunStore(path) as db:
        assert set(db.completed()) == {run_key(Config(seed=5))}


# --- sweeps -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """The 2 × 2 × 2-seed sweep, run once in this process (--workers 1)."""
    tmp = tmp_path_factory.mktemp("grid")
    return tmp, _sweep(tmp, "--workers", "1")


def test_two_by_two_by_two_seeds_stores_eight_runs_and_resumes(grid_sweep):
    tmp_path, out = grid_sweep
    assert (out["total"], out["done"], out["skipped"], out["failed"]) == (8, 8, 0, 0)
    rows = _rows(tmp_path / "runs.sqlite")
    assert len(rows) == 8 and len({k for k, _ in rows}) == 8 and {s for _, s in rows} == {"completed"}
    assert len(out["configs"]) == 4 and all(c["seeds"] == [0, 1] for c in out["configs"])
    # the summary's mean is the mean of the stored runs' own final test accuracy
    with RunStore(tmp_path / "runs.sqlite") as db:
        runs = db.runs()
    for c in out["configs"]:
        mine = [r["summary"]["test_accuracy"] for r in runs
                if r["config"]["depth"] == c["params"]["depth"] and r["config"]["lr"] == c["params"]["lr"]]
        assert c["test_accuracy"]["mean"] == pytest.approx(sum(mine) / 2)
    again = _sweep(tmp_path, "--workers", "1")
    assert (again["done"], again["skipped"]) == (0, 8)
    assert again["configs"] == out["configs"]


def test_sigkill_midway_then_rerun_completes_exactly_once(tmp_path):
    store = tmp_path / "runs.sqlite"
    slow = ["--epochs", "1", "--steps", "40", "--width", "64", "--batch-size", "16"]  # a run is slower than a poll
    cmd = [sys.executable, "-m", "gradwatch", "sweep", *GRID, *slow, "--store", str(store), "--workers", "2",
           "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)  # its processes are found by session id
    deadline = time.time() + 120
    completed = 0
    while completed < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if store.exists():
            try:
                completed = sum(s == "completed" for _, s in _rows(store))
            except sqlite3.OperationalError:  # schema not written yet
                pass
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10  # its workers, fork server and resource tracker end with it
    while _session(proc.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert _session(proc.pid) == []
    before = [s for _, s in _rows(store)]
    assert 3 <= before.count("completed") < 8
    result = _sweep(tmp_path, "--workers", "2", flags=slow)  # the same sweep, now in this process
    assert result["skipped"] == before.count("completed") and result["done"] == 8 - result["skipped"]
    rows = _rows(store)
    assert len(rows) == 8 and len({k for k, _ in rows}) == 8 and {s for _, s in rows} == {"completed"}


def test_ray_backend_matches_local_runs(grid_sweep, tmp_path):
    pytest.importorskip("ray", reason="Ray is optional: pip install 'gradwatch[ray]'")
    _, pool = grid_sweep
    ray = _sweep(tmp_path, "--workers", "1", "--backend", "ray", store="ray.sqlite")  # one Ray worker: one import
    assert ray["done"] == pool["done"] == 8
    for a, b in zip(pool["configs"], ray["configs"]):
        assert a["params"] == b["params"]
        for m in ("test_accuracy", "test_loss", "loss", "grad_ratio"):
            assert a[m]["values"] == pytest.approx(b[m]["values"], rel=1e-6)


def test_vmap_sweep_stores_the_same_results(grid_sweep, tmp_path):
    _, plain = grid_sweep
    batched = _sweep(tmp_path, "--workers", "1", "--vmap")   # depth 1 and 2: two groups of 2 lr × 2 seeds
    assert batched["done"] == 8
    for a, b in zip(plain["configs"], batched["configs"]):
        assert a["params"] == b["params"]
        for m in ("test_accuracy", "test_loss", "loss", "grad_ratio"):
            assert b[m]["values"] == pytest.approx(a[m]["values"], rel=1e-4)

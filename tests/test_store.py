"""The SQLite run store: round trip, WAL, transactional epochs, killed runs found as interrupted."""

import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO

from gradwatch import lab
from gradwatch.errors import ConfigError, PathError
from gradwatch.store import RunStore


def test_a_trained_run_round_trips(tmp_path):
    path = tmp_path / "runs.sqlite"
    cfg = lab.Config(depth=1, width=8, epochs=2, batch_size=256)
    run = lab.train(cfg, store=str(path))
    with RunStore(path) as db:
        (row,) = db.runs()
        assert row["id"] == run.id and row["status"] == "completed" and row["seed"] == 0
        assert lab.Config(**row["config"]) == cfg  # the config is JSON that rebuilds the same Config
        stored = db.metrics(run.id[:12])  # a unique prefix is enough
        assert [m["epoch"] for m in stored] == [1, 2]
        for got, want in zip(stored, run.metrics):
            for k, v in want.items():
                assert got[k] == pytest.approx(v, rel=1e-12)
        assert row["summary"]["test_accuracy"] == pytest.approx(run.final["test_accuracy"])
        assert row["summary"]["diagnosis"] == str(run.diagnosis)
        # the watch history, step × layer × stat, as the watch recorded it
        h = db.history(run.id)
        assert h["layers"] == run.history.layers and h["steps"].tolist() == run.history.steps.tolist()
        assert set(h["stats"]) == set(run.history.stats)
        for stat in run.history.stats:
            np.testing.assert_array_equal(h["stats"][stat], run.history.stat(stat))
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.integrity_ok()


def test_history_rows_and_nan_round_trip(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as db:
        db.start_run("r1", {"seed": 3})
        db.add_epoch("r1", 1, {"loss": float("nan"), "acc": 0.5}, layers=["a", "b"],
                     history=[(0, 0, "grad_norm", 1.0), (0, 1, "grad_norm", float("inf")), (1, 0, "grad_norm", 2.0)],
                     time_grads=[0.1, 0.2])
        h = db.history("r1")
        assert h["layers"] == ["a", "b"] and h["steps"].tolist() == [0, 1]
        np.testing.assert_array_equal(h["stats"]["grad_norm"], [[1.0, np.inf], [2.0, np.nan]])
        (m,) = db.metrics("r1")
        assert math.isnan(m["loss"]) and m["acc"] == 0.5
        np.testing.assert_allclose(db.time_grads("r1")[1], [0.1, 0.2])


def test_a_failed_epoch_write_leaves_nothing_half_written(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as db:
        db.start_run("r1", {"seed": 0})
        with pytest.raises(ValueError):  # the history row fails after the metrics rows went in
            db.add_epoch("r1", 1, {"loss": 1.0}, layers=["a"], history=[(0, 0, "g", "not a number")])
        assert db.metrics("r1") == []


def test_unknown_run_id_names_the_parameter(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as db:
        with pytest.raises(ConfigError, match="run_id='nope'"):
            db.get("nope")


def test_a_directory_is_not_a_store(tmp_path):
    with pytest.raises(PathError, match="store=.*is a directory"):
        RunStore(tmp_path)


def test_a_killed_run_is_found_interrupted_and_the_store_stays_readable(tmp_path):
    path = tmp_path / "runs.sqlite"
    script = textwrap.dedent(f"""
        import os, signal
        from gradwatch import lab
        def die(epoch, metrics):
            if epoch == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        lab.train(lab.Config(depth=1, width=8, epochs=5, batch_size=256), store={str(path)!r}, on_epoch=die)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == -9, p.stderr
    with RunStore(path) as db:
        (row,) = db.runs()
        assert row["status"] == "interrupted"
        assert [m["epoch"] for m in db.metrics(row["id"])] == [1, 2]
        assert db.integrity_ok()


def test_a_run_of_a_live_process_stays_running(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as db:
        db.start_run("mine", {"seed": 0})
    with RunStore(tmp_path / "s.sqlite") as db:  # reopened by the same (alive) process
        assert db.get("mine")["status"] == "running"


def test_configs_are_json_not_pickle(tmp_path):
    run = lab.train(lab.Config(depth=1, width=4, epochs=1, steps=1), store=str(tmp_path / "s.sqlite"))
    con = sqlite3.connect(tmp_path / "s.sqlite")
    (text,) = con.execute("SELECT config FROM runs WHERE id = ?", (run.id,)).fetchone()
    assert json.loads(text)["width"] == 4
    types = {t for (t,) in con.execute("SELECT DISTINCT typeof(value) FROM metrics")}
    assert types <= {"real", "integer", "null"}  # no blobs anywhere
    con.close()


def test_ten_thousand_runs_stored_back_to_back_have_distinct_sorted_ids(tmp_path):
    from gradwatch.store.ids import new_run_id

    with RunStore(tmp_path / "s.sqlite") as db:  # one transaction each, as a sweep stores them
        ids = []
        for i in range(10_000):
            ids.append(new_run_id())
            db.start_run(ids[-1], {"seed": i})
            db.finish_run(ids[-1], "completed")
    assert len(set(ids)) == 10_000 and ids == sorted(ids)  # made in order, sorted in order
    con = sqlite3.connect(tmp_path / "s.sqlite")  # read back by SQLite itself
    assert con.execute("SELECT count(DISTINCT id), count(*) FROM runs WHERE status = 'completed'").fetchone() == (
        10_000, 10_000)
    con.close()


def test_run_ids_made_in_the_same_millisecond_count_up_and_forked_processes_draw_their_own(monkeypatch):
    from gradwatch.store import ids

    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_700_000_000_123_000_000)  # a frozen clock
    monkeypatch.setattr(ids, "_last", (-1, 0))  # as in a fresh process
    made = [ids.new_run_id() for _ in range(1000)]
    assert len(set(made)) == 1000 and made == sorted(made)
    assert all(m.startswith("20231114-221320-123") for m in made)  # 1700000000 s = 2023-11-14 22:13:20 UTC
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child draws a fresh random part instead of counting on from the parent's last id
        os.write(write, ids.new_run_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read), os.close(write)
    assert child not in made and child.startswith("20231114-221320-123")


def test_a_duplicate_run_id_is_refused_and_names_it(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as db:
        db.start_run("same", {"seed": 0})
        db.finish_run("same", "completed")
        with pytest.raises(ConfigError, match="run_id='same'"):
            db.start_run("same", {"seed": 1})


def test_a_run_whose_writer_is_gone_reads_as_interrupted_even_read_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid no process has any more
    path = tmp_path / "s.sqlite"
    with RunStore(path) as db:
        db.start_run("mine", {"seed": 0})
        db.start_run("gone", {"seed": 1})
        db.conn.execute("UPDATE runs SET pid = ? WHERE id = 'gone'", (dead.pid,))
    with RunStore(path, readonly=True) as db:  # no writer has marked it yet
        assert {r["id"]: r["status"] for r in db.runs()} == {"mine": "running", "gone": "interrupted"}
        assert db.get("gone")["status"] == "interrupted"
        assert [r["id"] for r in db.runs(status="interrupted")] == ["gone"]
        assert [r["id"] for r in db.runs(status="running")] == ["mine"]
    con = sqlite3.connect(path)  # what is on disk is unchanged by reading
    assert con.execute("SELECT status FROM runs WHERE id = 'gone'").fetchone() == ("running",)
    con.close()


def test_a_forced_rerun_keeps_one_record_per_key_even_when_it_is_killed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "s.sqlite"
    with RunStore(path) as db:
        db.start_run("old", {"seed": 0}, key="k")
        db.finish_run("old", "completed")
        db.start_run("live", {"seed": 0}, key="k2")  # another key: untouched
        db.start_run("new", {"seed": 0}, key="k", replace=True)
        db.conn.execute("UPDATE runs SET pid = ? WHERE id = 'new'", (dead.pid,))  # as if killed now
    with RunStore(path) as db:
        assert sorted((r["key"], r["id"], r["status"]) for r in db.runs()) == [
            ("k", "new", "interrupted"), ("k2", "live", "running")]
        db.start_run("again", {"seed": 0}, key="k", replace=True)
        db.finish_run("again", "completed")
        assert [r["id"] for r in db.runs() if r["key"] == "k"] == ["again"]


def test_lab_all_force_interrupted_midway_leaves_one_record_per_experiment(tmp_path, monkeypatch):
    import gradwatch.cli.lab as cli_lab
    from gradwatch.cli import main

    args = ["lab", "all", "--quick", "--only", "chain,interval", "--store", str(tmp_path / "s.sqlite"), "--json"]
    assert main(args) == 0
    real = cli_lab.run_and_report

    def interrupted_on_interval(name, *a, **k):
        if name == "interval":
            raise KeyboardInterrupt
        return real(name, *a, **k)

    monkeypatch.setattr(cli_lab, "run_and_report", interrupted_on_interval)
    assert main([*args, "--force"]) == 130
    con = sqlite3.connect(tmp_path / "s.sqlite")
    rows = con.execute("SELECT json_extract(config, '$.experiment'), status FROM runs ORDER BY 1").fetchall()
    con.close()
    assert rows == [("chain", "completed"), ("interval", "interrupted")]  # never two records of one experiment

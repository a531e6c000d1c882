"""Every bad input the CLI can be given ends in one line naming the parameter, the value and what is allowed,
with exit 2 (a bad option) or 1 (a file-system problem), never a traceback or a silent wrong result."""

import os
import sqlite3

import pytest

from gradwatch import lab
from gradwatch.cli import main
from gradwatch.errors import ConfigError
from gradwatch.store import RunStore

TINY = ["--depth", "1", "--width", "4", "--epochs", "1", "--steps", "2"]


def _run(capsys, args):
    rc = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


BAD_TRAIN = [  # (flags, the parameter the one-line error names, what it says is allowed)
    (["--lr", "inf"], "--lr inf", "finite"),
    (["--bias-init", "nan"], "--bias-init nan", "finite"),
    (["--init-std", "inf"], "--init-std inf", "finite"),
    (["--l2", "inf"], "--l2 inf", "finite"),
    (["--seed", "-1"], "--seed -1", "≥ 0"),
    (["--seed", str(2**70)], f"--seed {2**70}", "≤"),
    (["--device", "cuda:99"], "--device 'cuda:99'", "cpu"),
    (["--device", "nonsense"], "--device 'nonsense'", "cpu"),
    (["--width", str(10**9)], f"--width {10**9}", "GiB"),
    (["--depth", str(10**8)], f"--depth {10**8}", "GiB"),
    (["--val-fraction", "0.9999"], "--val-fraction 0.9999", "empty training split"),
]


@pytest.mark.parametrize("flags,named,allowed", BAD_TRAIN, ids=[" ".join(b[0]) for b in BAD_TRAIN])
def test_bad_train_option_is_one_line_exit_2(tmp_path, capsys, flags, named, allowed):
    store = tmp_path / "runs.sqlite"
    rc, out, err = _run(capsys, ["train", *TINY, "--store", str(store), *flags])
    assert rc == 2, out + err
    assert err.count("\n") == 1 and named in err and allowed in err
    if store.exists():  # refused before a run was started
        with RunStore(store) as db:
            assert db.runs() == []


def test_tbptt_takes_one_number_as_its_help_says(tmp_path):
    assert lab.Config(model="rnn", dataset="adding", tbptt=[5]).tbptt == [5, 5]
    assert main(["train", "--model", "rnn", "--dataset", "adding", "--tbptt", "5", "--epochs", "1", "--steps", "1",
                 "--width", "4", "--store", str(tmp_path / "s.sqlite")]) == 0


BAD_THEORY_AND_LAB = [
    (["theory", "variance", "--init", "normal", "--init-std", "-1"], 2, "--init-std -1", "> 0"),
    (["theory", "meanfield", "--grid", "100000"], 2, "--grid 100000", "1000"),
    (["theory", "meanfield", "--plot", "plot"], 2, "--plot 'plot'", ".png"),
    (["theory", "compare", "--width", str(10**7)], 2, f"--width {10**7}", "GiB"),
    (["theory", "compare", f"--seed={2**70}"], 2, f"--seed {2**70}", "[0, "),
    (["theory", "compare", "--seed=-1"], 2, "--seed -1", "[0, "),
    (["lab", "paralysis", "--quick", "--width", str(10**9)], 2, f"--width {10**9}", "GiB"),
    (["lab", "paralysis", "--quick", "--seed", "-1"], 2, "--seed -1", "≥ 0"),
    (["lab", "paralysis", "--quick", "--init-std", "nan"], 2, "--init-std nan", "finite"),
]


@pytest.mark.parametrize("args,code,named,allowed", BAD_THEORY_AND_LAB, ids=[" ".join(b[0]) for b in BAD_THEORY_AND_LAB])
def test_bad_theory_and_lab_options(capsys, args, code, named, allowed):
    rc, out, err = _run(capsys, args)
    assert rc == code and err.count("\n") == 1 and named in err and allowed in err, out + err


def test_plot_names_the_file_it_writes_and_refuses_a_directory(tmp_path, capsys):
    rc, _, err = _run(capsys, ["theory", "meanfield", "--plot", str(tmp_path)])
    assert rc == 1 and "is a directory" in err and not (tmp_path.parent / (tmp_path.name + ".png")).exists()
    target = tmp_path / "phase.png"
    rc, out, _ = _run(capsys, ["theory", "meanfield", "--grid", "3", "--plot", str(target)])
    assert rc == 0 and f"wrote {target}" in out.replace("\n", "") and target.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args", [["runs"], ["show", "someid"]], ids=["runs", "show"])
def test_file_system_problems_are_one_line_exit_1(tmp_path, capsys, args):
    missing = tmp_path / "none.sqlite"
    rc, out, err = _run(capsys, [*args, "--store", str(missing)])
    if args == ["runs"]:  # nothing stored yet is not an error for the list
        assert rc == 0 and "no runs yet" in out and not missing.exists()
    else:
        assert rc == 1 and "--store" in err and "no run store there" in err and not missing.exists()
    rc, _, err = _run(capsys, [*args, "--store", str(tmp_path)])
    assert rc == 1 and "is a directory" in err
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello, not a database\n" * 100)
    rc, _, err = _run(capsys, [*args, "--store", str(not_a_db)])
    assert rc == 1 and "not a gradwatch run store" in err


def test_out_and_store_that_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = _run(capsys, ["lab", "chain", "--out", str(blocker / "sub")])
    assert rc == 1 and "--out" in err and "cannot be created" in err
    rc, _, err = _run(capsys, ["train", *TINY, "--store", str(blocker / "runs.sqlite")])
    assert rc == 1 and "--store" in err and "cannot be created" in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads and writes read-only files")
def test_a_read_only_store_can_still_be_listed_and_shown(tmp_path, capsys):
    store = tmp_path / "ro" / "runs.sqlite"
    run = lab.train(lab.Config(depth=1, width=4, epochs=1, steps=1), store=str(store))
    store.chmod(0o444)
    store.parent.chmod(0o555)
    try:
        rc, out, _ = _run(capsys, ["runs", "--store", str(store)])
        assert rc == 0 and run.id in out
        rc, out, _ = _run(capsys, ["show", run.id, "--store", str(store)])
        assert rc == 0 and run.id in out
        rc, _, err = _run(capsys, ["train", *TINY, "--store", str(store)])
        assert rc == 1 and "cannot be written" in err
    finally:
        store.parent.chmod(0o755)


def test_a_run_that_diverges_is_stored_as_diverged_and_exits_3(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    # SGD with lr 1e30 overflows the weights within a few steps; the same config with lr 0.01 completes.
    args = ["train", *TINY, "--optimizer", "sgd", "--store", str(store)]
    rc, out, _ = _run(capsys, [*args, "--lr", "1e30", "--steps", "5"])
    assert rc == 3 and "diverged" in out
    rc, out, _ = _run(capsys, [*args, "--lr", "0.01", "--steps", "5"])
    assert rc == 0 and "completed" in out
    with RunStore(store) as db:
        diverged, completed = sorted(db.runs(), key=lambda r: r["started"])
        assert (diverged["status"], completed["status"]) == ("diverged", "completed")
        loss = db.metrics(diverged["id"])[0]["loss"]
    assert loss != loss or abs(loss) == float("inf")  # what made it diverged: the stored loss is not finite
    assert "non-finite" in diverged["error"]


def test_an_old_store_is_migrated_keeping_its_runs(tmp_path):
    from gradwatch.store.sqlite import SCHEMA

    path = tmp_path / "old.sqlite"
    old = SCHEMA.replace("'completed', 'diverged', 'failed'", "'completed', 'failed'")
    conn = sqlite3.connect(path)
    conn.executescript(old)
    conn.execute("INSERT INTO runs (id, config, status, started) VALUES ('r1', '{}', 'completed', 0)")
    conn.execute("INSERT INTO metrics VALUES ('r1', 1, 'loss', 0.5)")
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError):  # the old CHECK refuses the new status
        conn.execute("UPDATE runs SET status = 'diverged'")
    conn.close()
    with RunStore(path) as db:
        db.start_run("r2", {"seed": 0})
        db.finish_run("r2", "diverged")
        assert {r["id"]: r["status"] for r in db.runs()} == {"r1": "completed", "r2": "diverged"}
        assert db.metrics("r1") == [{"epoch": 1, "loss": 0.5}]
        assert db.integrity_ok()
        assert db.conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_config_errors_name_the_field_for_the_python_api():
    with pytest.raises(ConfigError, match=r"lr=inf.*finite"):
        lab.Config(lr=float("inf"))
    with pytest.raises(ConfigError, match=r"device='cuda:7'"):
        lab.Config(device="cuda:7")


@pytest.mark.parametrize("call,param", [
    (lambda: lab.fold_batchnorm(1), "model="),
    (lambda: lab.train(lab.Config(depth=1, width=2, epochs=1, steps=1), store=123), "store=123"),
    (lambda: RunStore(123), "store=123"),
    (lambda: lab.Config(model="rnn", dataset="adding", tbptt=[5, 5, 5]), "tbptt="),
], ids=["fold_batchnorm", "train-store", "RunStore", "tbptt-three"])
def test_python_api_errors_name_the_parameter(call, param):
    with pytest.raises(ConfigError, match=param):
        call()

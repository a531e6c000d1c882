"""The bad-input suite: hundreds of wrong inputs to the CLI and the API, each answered — never a traceback, never
silently accepted, never a hang.

CLI: every case runs in this process through ``gradwatch.cli.main`` with the work after validation stubbed out
(training, experiments, sweeps, the web server), so an input that is wrongly accepted fails fast instead of
running. Each must exit 1 or 2 with exactly one line on stderr, ``error: …``, naming the flag (or the file), and
leave a store it was given as it was. API: each raises a ValueError/TypeError (``ConfigError``, ``PathError``)
whose message names the parameter.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import torch

import gradwatch as gw
from gradwatch.cli import main
from gradwatch.errors import ConfigError, DataError
from gradwatch.lab.config import Config

# ---- bad files standing where a run store should be ------------------------------------------------------------


def _other_program(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'Ada')")
    con.commit()
    con.close()


def _other_runs_table(path: Path) -> None:  # a table named runs, but not gradwatch's
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (run INTEGER, lap_time REAL)")
    con.commit()
    con.close()


def _store_with_a_run(path: Path) -> None:
    from gradwatch.store import RunStore

    with RunStore(path) as db:
        db.start_run("r1", {"seed": 0})
        db.add_history("r1", [(s, j, "grad_norm", 1.0 + s) for s in range(400) for j in range(4)],
                       layers=["a", "b", "c", "d"])
        db.finish_run("r1", "completed")
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _truncated(path: Path) -> None:
    _store_with_a_run(path)
    data = path.read_bytes()
    path.write_bytes(data[:60])


def _corrupt(path: Path) -> None:  # a page in the middle overwritten: "database disk image is malformed"
    _store_with_a_run(path)
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page, len(data), page):
        data[start:start + page] = b"\xde\xad\xbe\xef" * (page // 4)
    path.write_bytes(bytes(data))


BAD_STORES = {
    "text": lambda p: p.write_text("these are my notes, not a database\n" * 50),
    "binary": lambda p: p.write_bytes(bytes(range(256)) * 8),
    "truncated": _truncated,
    "other-program": _other_program,
    "other-runs-table": _other_runs_table,
    "corrupt": _corrupt,
}
READERS = [["runs"], ["show", "r1"], ["report", "r1", "--html", "{tmp}/r.html"], ["compare", "r1", "r1"],
           ["serve", "--no-browser"]]
WRITERS = [["train", "--depth", "1", "--width", "4", "--epochs", "1", "--steps", "1"],
           ["sweep", "--param", "lr=0.1,0.2", "--epochs", "1", "--steps", "1"],
           ["lab", "all", "--quick", "--only", "chain"]]


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """Whatever passes validation stops here: an input that should have been refused fails the test at once."""
    import gradwatch.lab as lab_pkg
    import gradwatch.sweep.runner as runner
    from gradwatch.lab.experiments.base import Experiment

    def accepted(*a, **k):
        raise AssertionError("silently accepted: the work started")

    monkeypatch.setattr(lab_pkg, "train", accepted)
    monkeypatch.setattr(runner, "run_sweep", accepted)
    monkeypatch.setattr(Experiment, "__call__", accepted)
    monkeypatch.setattr("uvicorn.Server.run", accepted)


def _answered(capsys, args, named=None, codes=(1, 2)):
    """Run the CLI; it must refuse ``args`` in one line naming ``named``."""
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert rc in codes, f"exit {rc}: {out[-300:]}{err[-300:]}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    if named is not None:
        assert named in lines[0], lines[0]
    return lines[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", sorted(BAD_STORES))
@pytest.mark.parametrize("command", READERS + WRITERS, ids=lambda c: c[0] if c[0] != "lab" else "lab-all")
def test_a_file_that_is_not_a_run_store_is_refused_and_left_untouched(tmp_path, capsys, command, kind):
    store = tmp_path / "runs.sqlite"
    BAD_STORES[kind](store)
    before = _digest(store)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    _answered(capsys, [*args, "--store", store], named="--store", codes=(1,))
    assert _digest(store) == before  # never written
    made = {p.name for p in tmp_path.iterdir()} - {"runs.sqlite"}
    assert made <= ({"runs.sqlite-wal", "runs.sqlite-shm"} if kind == "corrupt" else set())  # no report, no plot


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
@pytest.mark.parametrize("kind", ["missing", "directory", "empty"])
def test_a_store_that_is_not_there_is_refused_when_it_must_be_read(tmp_path, capsys, command, kind):
    store = tmp_path / ("none.sqlite" if kind == "missing" else "dir" if kind == "directory" else "empty.sqlite")
    if kind == "directory":
        store.mkdir()
    elif kind == "empty":
        store.touch()
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    if command[0] in ("runs", "serve") and kind in ("missing",):  # an empty list, a store the first run creates
        return
    _answered(capsys, [*args, "--store", store], named="--store")
    assert not (tmp_path / "r.html").exists()


# ---- flags with values that are not allowed ----------------------------------------------------------------------

FLOAT_FIELDS = [n for n, f in Config.model_fields.items() if f.annotation in (float, float | None)
                and n not in ("alpha",)]
INT_FIELDS = [n for n, f in Config.model_fields.items() if f.annotation in (int, int | None)]
CHOICE_FIELDS = ["model", "activation", "init", "init_mode", "norm", "norm_position", "dropout_variant", "affine",
                 "dataset", "scale", "preprocess", "loss", "optimizer", "schedule", "pretrain", "device"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


TRAIN_CASES = (
    [(f, v) for f in FLOAT_FIELDS for v in ("abc", "nan", "inf", "-inf")]
    + [(f, v) for f in INT_FIELDS for v in ("abc", "1.5")]
    + [(f, "nope") for f in CHOICE_FIELDS]
    + [(f, "-1") for f in ("depth", "width", "epochs", "batch_size", "steps", "seed", "n_train", "seq_len",
                           "watch_every", "lr")]
    + [(f, "0") for f in ("depth", "width", "epochs", "batch_size", "steps", "watch_every", "lr")]
    + [(f, str(2**70)) for f in ("depth", "width", "batch_size", "seed")]
)


@pytest.mark.parametrize("field,value", TRAIN_CASES, ids=[f"{f}={v}" for f, v in TRAIN_CASES])
def test_train_refuses_a_bad_value_naming_the_flag(tmp_path, capsys, field, value):
    store = tmp_path / "runs.sqlite"
    _answered(capsys, ["train", "--store", store, _flag(field), value], named=_flag(field))
    assert not store.exists() or sqlite3.connect(store).execute("SELECT count(*) FROM runs").fetchone() == (0,)


SWEEP_CASES = [
    (["--param", "depth"], "--param"), (["--param", "depth="], "depth"), (["--param", "=3"], "--param"),
    (["--param", "nope=1"], "nope"), (["--param", "depth=abc"], "depth"), (["--param", "depth=range:1"], "depth"),
    (["--param", "depth=range:5:1:1"], "depth"), (["--param", "depth=range:1:5:0"], "depth"),
    (["--param", "lr=log:0:1:3"], "lr"), (["--param", "lr=log:1e-3:1:1"], "lr"), (["--param", "lr=lin:1:2:x"], "lr"),
    (["--param", "lr=log:1e-3:1:1e9"], "lr"), (["--param", "depth=range:1:1e12:1"], "depth"),
    (["--param", "lr=nan:1:2:3"], "lr"), (["--param", "lr=range:0:inf:1"], "lr"),
    (["--param", "depth=2", "--param", "depth=3"], "depth"), (["--param", "depth=range:1:1000000:1"], "--yes"),
    (["--param", "lr=0.1,0.2", "--seeds", "6000"], "--yes"), (["--seeds", "0"], "--seeds"),
    (["--seeds", "-1"], "--seeds"), (["--workers", "0"], "--workers"), (["--workers", "-3"], "--workers"),
    (["--backend", "nope"], "--backend"), (["--ray-address", "auto"], "--ray-address"),
    (["--vmap", "--model", "rnn", "--dataset", "adding"], "--vmap"), (["--param", "depth=2", "--depth", "3"], "depth"),
    (["--param", "lr=0.1,nan"], "lr"), (["--param", "activation=relu,nope"], "activation"),
    (["--param", "seed=0,1", "--seeds", "2"], "--seeds"), (["--file", "{tmp}/none.toml"], "--file"),
    (["--file", "{tmp}/bad.toml"], "--file"), (["--file", "{tmp}/sweep.json"], "--file"),
    (["--file", "{tmp}/unknown.toml"], "--file"), (["--workers", "many"], "--workers"),
]


@pytest.mark.parametrize("args,named", SWEEP_CASES, ids=[" ".join(a) for a, _ in SWEEP_CASES])
def test_sweep_refuses_a_bad_spec_before_any_run(tmp_path, capsys, args, named):
    (tmp_path / "bad.toml").write_text("seeds = [1, 2\n")
    (tmp_path / "sweep.json").write_text("{}")
    (tmp_path / "unknown.toml").write_text("seeds = 1\nsteps = 3\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    store = tmp_path / "runs.sqlite"
    _answered(capsys, ["sweep", *args, "--store", store], named=named)
    assert not store.exists()


THEORY_CASES = [
    *[(["variance", "--sizes", v], "--sizes") for v in ("784,,10", "", ",", "a,b", "784,-5", "1.5,2", "784,inf",
                                                       "784,0,10", "1e400", "784,nan")],
    *[(["variance", f, v], f) for f in ("--init-std", "--input-var") for v in ("-1", "nan", "inf", "abc")],
    (["variance", "--activation", "nope"], "--activation"), (["variance", "--init", "nope"], "--init"),
    *[(["meanfield", "--sigma-w2", v], "--sigma-w2") for v in ("0", "-1", "nan", "inf", "1e11", "1e16", "abc")],
    *[(["meanfield", "--sigma-b2", v], "--sigma-b2") for v in ("-1", "nan", "inf", "1e11")],
    *[(["meanfield", "--depth", v], "--depth") for v in ("0", "-1", "abc")],
    *[(["meanfield", "--q0", v], "--q0") for v in ("-1", "nan", "inf")],
    *[(["meanfield", "--grid", v], "--grid") for v in ("0", "1", "100000", "x")],
    (["meanfield", "--activation", "nope"], "--activation"),
    (["meanfield", "--plot", "c.txt"], "--plot"), (["meanfield", "--plot", "{tmp}/no/dir/p.png"], "--plot"),
    (["meanfield", "--plot", "{tmp}"], "--plot"),
    *[(["chain", "--weights", v], "--weights") for v in ("", "1,,2", "a", "inf", "1,nan")],
    (["chain", "--weights", "1,2", "--biases", "1,2,3"], "--biases"),
    (["chain", "--weights", "1,2", "--x", "nan"], "--x"), (["chain", "--weights", "1,2", "--activation", "no"],
                                                           "--activation"),
    (["chain", "--weights", "1,2", "--loss-grad", "nan"], "--loss-grad"),
    *[(["nielsen", "--w", v], "--w") for v in ("nan", "inf", "abc")],
    *[(["compare", f, v], f) for f in ("--width", "--depth", "--nets", "--examples") for v in ("0", "-1", "x")],
    (["compare", "--width", str(10**7)], "--width"), (["compare", "--seed", "-1"], "--seed"),
    (["compare", "--seed", str(2**70)], "--seed"), (["compare", "--activation", "nope"], "--activation"),
    (["compare", "--init", "nope"], "--init"), (["compare", "--plot", "c.txt"], "--plot"),
]


@pytest.mark.parametrize("args,named", THEORY_CASES, ids=[" ".join(a) for a, _ in THEORY_CASES])
def test_theory_refuses_a_bad_value_naming_the_flag(tmp_path, capsys, args, named):
    _answered(capsys, ["theory", *[a.replace("{tmp}", str(tmp_path)) for a in args]], named=named)
    assert not (tmp_path.parent / (tmp_path.name + ".png")).exists()


STORE_COMMAND_CASES = [
    (["show", "nope"], "nope"), (["show", ""], "run"), (["report", "r1", "--html", "page.txt"], "--html"),
    (["report", "r1", "--html", "{tmp}"], "--html"), (["report", "nope", "--html", "{tmp}/p.html"], "nope"),
    (["compare", "r1", "r1", "--plot", "c.txt"], "--plot"), (["compare", "r1", "r1", "--plot", "{tmp}"], "--plot"),
    (["compare", "r1", "nope"], "nope"), (["compare", "r1", "r1", "--stat", "nope"], "--stat"),
    (["runs", "--limit", "-1"], "--limit"), (["serve", "--port", "-1"], "--port"),
    (["serve", "--port", "70000"], "--port"), (["serve", "--port", "x"], "--port"),
]


@pytest.mark.parametrize("args,named", STORE_COMMAND_CASES, ids=[" ".join(a) for a, _ in STORE_COMMAND_CASES])
def test_commands_on_a_good_store_refuse_bad_arguments(tmp_path, capsys, args, named):
    store = tmp_path / "runs.sqlite"
    _store_with_a_run(store)
    before = _digest(store)
    _answered(capsys, [*[a.replace("{tmp}", str(tmp_path)) for a in args], "--store", store], named=named)
    assert _digest(store) == before
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("p.html"))


PARSER_CASES = [["train", "--nope"], ["nonexistent"], ["show"], ["theory", "nope"], ["lab", "nope"],
                ["train", "--depth"], ["sweep", "--param"], ["compare", "onlyone"], ["report", "r1"],
                ["train", "--depth", "2", "3"]]


@pytest.mark.parametrize("args", PARSER_CASES, ids=" ".join)
def test_what_the_parser_refuses_is_one_line_too(capsys, args):
    _answered(capsys, args, codes=(2,))


# ---- the API ---------------------------------------------------------------------------------------------------

def _model():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


WATCH_CASES = [
    ({"stats": 42}, TypeError, "stats"), ({"stats": None}, TypeError, "stats"),
    ({"stats": "nope"}, ValueError, "stats"),
    ({"stats": []}, ValueError, "stats"), ({"stats": ["nope"]}, ValueError, "stats"),
    ({"stats": [42]}, ValueError, "stats"), ({"every": 0}, ValueError, "every"), ({"every": -1}, ValueError, "every"),
    ({"every": "a"}, ValueError, "every"), ({"every": 1.5}, ValueError, "every"),
    ({"sample_every": 0}, ValueError, "sample_every"), ({"flush_every": 0}, ValueError, "flush_every"),
    ({"on_nonfinite": "nope"}, ValueError, "on_nonfinite"), ({"store": 42}, ValueError, "store"),
    ({"name": 42, "store": "{tmp}/s.sqlite"}, ValueError, "name"),
    ({"config": 42, "store": "{tmp}/s.sqlite"}, ValueError, "config"),
    ({"config": {"a": 1}}, ValueError, "config"), ({"store": "{tmp}"}, DataError, "store"),
    ({"store": "{tmp}/notes.txt"}, DataError, "store"), ({"store": "{tmp}/other.sqlite"}, DataError, "store"),
]


@pytest.mark.parametrize("options,error,named", WATCH_CASES, ids=[repr(o) for o, _, _ in WATCH_CASES])
def test_watch_refuses_a_bad_option_naming_it(tmp_path, options, error, named):
    (tmp_path / "notes.txt").write_text("not a database\n" * 20)
    _other_program(tmp_path / "other.sqlite")
    options = {k: v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v for k, v in options.items()}
    model = _model()
    with pytest.raises(error, match=named):
        gw.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), **options)
    assert not any(h for m in model.modules() for h in (m._forward_hooks, m._backward_hooks))  # nothing left attached


@pytest.mark.parametrize("html", [123, 1.5, ["a.html"], object()], ids=["int", "float", "list", "object"])
def test_report_html_must_be_a_path(html):
    model = _model()
    with gw.watch(model) as w:
        model(torch.randn(2, 3)).sum().backward()
        w.step()
    with pytest.raises(TypeError, match="html="):
        w.report(html=html)


def test_store_api_refuses_what_is_not_a_run_store(tmp_path):
    from gradwatch.store import RunStore

    for kind, make in BAD_STORES.items():
        path = tmp_path / f"{kind}.sqlite"
        make(path)
        before = _digest(path)
        for readonly in (True, False):  # refused when opened, or (a damaged page) when read
            with pytest.raises(DataError, match="store="):
                with RunStore(path, readonly=readonly) as db:
                    db.history(db.runs()[0]["id"])
        assert _digest(path) == before, kind
    with pytest.raises(ConfigError, match="store=42"):
        RunStore(42)
    (tmp_path / "empty.sqlite").touch()
    with pytest.raises(DataError, match="empty file"):
        RunStore(tmp_path / "empty.sqlite", readonly=True)


def test_a_full_disk_is_a_path_error_naming_the_store_and_keeps_what_was_written(tmp_path):
    from gradwatch.errors import PathError
    from gradwatch.store import RunStore

    with RunStore(tmp_path / "s.sqlite") as db:
        db.start_run("r1", {"seed": 0})
        pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
        db.conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is full two pages from now
        with pytest.raises(PathError, match="store=.*disk is full"):
            db.add_history("r1", [(s, j, "grad_norm", float(s)) for s in range(20_000) for j in range(4)],
                           layers=["a", "b", "c", "d"])
        assert db.get("r1")["status"] == "running" and db.history("r1")["stats"] == {}  # rolled back whole
        assert db.integrity_ok()


@pytest.mark.parametrize("kwargs,error,named", [
    ({"sigma_w2": 0.0}, ValueError, "sigma_w2"), ({"sigma_w2": float("nan")}, ValueError, "sigma_w2"),
    ({"sigma_w2": 1e16}, ValueError, "sigma_w2"), ({"sigma_w2": "1"}, TypeError, "sigma_w2"),
    ({"sigma_b2": -1.0}, ValueError, "sigma_b2"), ({"sigma_b2": float("inf")}, ValueError, "sigma_b2"),
    ({"activation": "nope"}, ValueError, "activation"), ({"q0": -1.0}, ValueError, "q0"),
], ids=repr)
def test_mean_field_refuses_a_bad_argument_naming_it(kwargs, error, named):
    from gradwatch.theory import mean_field

    args = {"activation": "tanh", "sigma_w2": 1.5, "sigma_b2": 0.05, **kwargs}
    with pytest.raises(error, match=named):
        mean_field(**args)


@pytest.mark.parametrize("text", ["depth", "=1", "nope=1", "depth=", "depth=range:1:2", "lr=log:-1:1:3",
                                  "depth=range:1:1e9:1"], ids=repr)
def test_parse_param_refuses_naming_the_knob(text):
    from gradwatch.sweep.spec import parse_param

    with pytest.raises(ConfigError):
        parse_param(text)


@pytest.mark.parametrize("args,named", [(("nope", 1), "backend"), (("process", 0), "workers"),
                                        (("process", 2, "auto"), "ray_address")], ids=repr)
def test_make_executor_refuses_naming_the_parameter(args, named):
    from gradwatch.sweep.executors import make_executor

    with pytest.raises(ConfigError, match=named):
        make_executor(*args)

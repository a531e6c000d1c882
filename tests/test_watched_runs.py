"""Watched runs of a user's own model in the run store: written at every flush, shown again by `gradwatch show`,
listed by `gradwatch runs`, reported as a page and compared with another run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.cli import main
from gradwatch.store import RunStore

STEPS = 8


def _watched_run(store, name, activation, *, fail_at=None):
    torch.manual_seed(0)
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[activation]
    model = nn.Sequential(nn.Linear(6, 12), act(), nn.Linear(12, 12), act(), nn.Linear(12, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    w = gw.watch(model, opt, stats=["grad_norm", "grad_abs_mean", "nonfinite", "update_ratio", "grad_hist"],
                 sample_every=4, flush_every=3, store=store, name=name,
                 config={"activation": activation, "lr": 0.1, "seed": 0})
    with w:
        for step in range(STEPS):
            if step == fail_at:
                raise RuntimeError("out of memory (simulated)")
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return w


def _json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_a_watched_run_is_stored_shown_reported_and_compared(tmp_path, capsys):
    store = str(tmp_path / "runs.sqlite")
    a = _watched_run(store, "sigmoid net", "sigmoid")
    b = _watched_run(store, "relu net", "relu")
    id_a, id_b = a._outputs.run_id, b._outputs.run_id
    assert id_a.startswith("sigmoid-net-") and id_b.startswith("relu-net-")

    # stored as recorded: every statistic, step and layer, and the histograms
    with RunStore(store) as db:
        run = db.get(id_a)
        assert run["status"] == "completed" and run["config"]["kind"] == "watch"
        assert run["config"]["user"] == {"activation": "sigmoid", "lr": 0.1, "seed": 0}
        assert run["summary"]["diagnosis"] == str(a.diagnose())
        from gradwatch.store.watched import load_history

        h = load_history(db, id_a)
    for stat in a.history.stats:
        np.testing.assert_array_equal(h.stat(stat), a.history.stat(stat))
    np.testing.assert_array_equal(h.histograms(), a.history.histograms())
    assert h.kinds == a.history.kinds and h.layers == a.history.layers == ["0", "2", "4"]

    # gradwatch runs / show
    listed = _json(capsys, "runs", "--store", store, "--json")
    assert {r["id"] for r in listed} == {id_a, id_b}
    assert main(["runs", "--store", store]) == 0  # the table (its cells wrap at 80 columns)
    capsys.readouterr()
    assert main(["show", id_a[:12], "--store", store]) == 0
    out = capsys.readouterr().out
    assert "sigmoid net" in out and '"activation": "sigmoid"' in out and "(optimizer SGD)" in out
    assert " ".join(str(a.diagnose()).splitlines()[0].split()) in " ".join(out.split())  # lines wrap at 80
    shown = _json(capsys, "show", id_a, "--store", store, "--json")
    np.testing.assert_allclose(np.array(shown["history"]["stats"]["grad_norm"], dtype=float),
                               a.history.stat("grad_norm"))

    # gradwatch compare: each layer's median over the steps, computed here from the live histories
    cmp = _json(capsys, "compare", id_a, id_b, "--store", store, "--json", "--plot", str(tmp_path / "cmp.png"))
    assert cmp["runs"] == [id_a, id_b] and [r["layer"] for r in cmp["layers"]] == ["0", "2", "4"]
    for j, row in enumerate(cmp["layers"]):
        want_a = np.median(a.history.stat("grad_norm")[:, j])
        want_b = np.median(b.history.stat("grad_norm")[:, j])
        assert row[id_a] == pytest.approx(want_a, rel=1e-6) and row[id_b] == pytest.approx(want_b, rel=1e-6)
        assert row["ratio"] == pytest.approx(want_b / want_a, rel=1e-6)
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["compare", id_a, id_b, "--store", store]) == 0
    assert "second / first" in capsys.readouterr().out

    # gradwatch report ID --html
    assert main(["report", id_b, "--html", str(tmp_path / "b.html"), "--store", store]) == 0
    page = (tmp_path / "b.html").read_text(encoding="utf-8")
    assert id_b in page and all(f"<td>{layer}</td>" in page for layer in ("0", "2", "4"))


def test_a_run_whose_training_raised_is_stored_as_failed(tmp_path):
    store = str(tmp_path / "runs.sqlite")
    with pytest.raises(RuntimeError, match="simulated"):
        _watched_run(store, "crash", "relu", fail_at=5)
    with RunStore(store) as db:
        (run,) = db.runs()
        assert run["status"] == "failed" and "simulated" in run["error"]
        assert db.history(run["id"])["steps"].tolist() == list(range(5))  # the steps before the crash are kept


def test_compare_names_a_statistic_that_was_not_recorded(tmp_path, capsys):
    store = str(tmp_path / "runs.sqlite")
    a = _watched_run(store, "one", "relu")
    assert main(["compare", a._outputs.run_id, a._outputs.run_id, "--stat", "act_std", "--store", store]) == 2
    assert "--stat 'act_std' is not allowed" in capsys.readouterr().err


def test_report_of_a_missing_store_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", "x", "--html", str(tmp_path / "p.html"), "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "no run store there" in capsys.readouterr().err


def test_a_store_that_fails_mid_run_does_not_stop_training(tmp_path, monkeypatch):
    from gradwatch.probe.guard import HookFailureWarning

    def full(self, *args, **kwargs):
        raise OSError("database or disk is full")

    monkeypatch.setattr(RunStore, "add_history", full)
    with pytest.warns(HookFailureWarning) as record:
        w = _watched_run(str(tmp_path / "runs.sqlite"), "full disk", "relu")
    messages = [str(r.message) for r in record if issubclass(r.category, HookFailureWarning)]
    assert len(messages) == 1 and "sink 'run store'" in messages[0] and "disk is full" in messages[0]
    assert w.history.steps.tolist() == list(range(STEPS))  # every step trained and recorded
    assert "sink 'run store' @ *" in w.history.meta["disabled"]

"""``gradwatch lab all`` is resumable: a completed experiment is skipped on re-run (unless --force), an
interrupted one runs again, and the store never holds two records of one experiment."""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import redirect_stdout

import pytest

import gradwatch.cli.lab as cli_lab
from gradwatch.cli import main

PICK = "chain,interval"  # two fast experiments of the catalogue


def _lab_all(tmp_path, *extra: str) -> dict:
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["lab", "all", "--quick", "--only", PICK, "--store", str(tmp_path / "s.sqlite"),
                   "--out", str(tmp_path / "out"), "--json", *extra])
    assert rc == 0
    return json.loads(buf.getvalue())


def _records(tmp_path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        return conn.execute("SELECT json_extract(config, '$.experiment'), status FROM runs "
                            "WHERE json_extract(config, '$.experiment') IS NOT NULL ORDER BY 1").fetchall()


@pytest.fixture
def calls(monkeypatch):
    """The experiments actually run (not skipped), in order."""
    ran: list[str] = []
    real = cli_lab.run_and_report

    def counting(name, *a, **k):
        ran.append(name)
        return real(name, *a, **k)

    monkeypatch.setattr(cli_lab, "run_and_report", counting)
    return ran


def test_lab_all_skips_completed_and_resumes_interrupted(tmp_path, calls):
    first = _lab_all(tmp_path)
    assert calls == ["chain", "interval"] and set(first) == {"chain", "interval"}
    again = _lab_all(tmp_path)
    assert calls == ["chain", "interval"]                       # nothing ran again
    assert {k: v["holds"] for k, v in again.items()} == {k: v["holds"] for k, v in first.items()}
    assert (tmp_path / "out" / "index.html").read_text().count("<div class='card'>") == 2
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:      # as a kill -9 during "interval" would leave it
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE json_extract(config, '$.experiment') = "
                     "'interval'")
    _lab_all(tmp_path)
    assert calls == ["chain", "interval", "interval"]
    assert _records(tmp_path) == [("chain", "completed"), ("interval", "completed")]
    _lab_all(tmp_path, "--force")
    assert calls[-2:] == ["chain", "interval"]
    assert _records(tmp_path) == [("chain", "completed"), ("interval", "completed")]  # replaced, not added


def test_only_names_the_bad_experiment(tmp_path, capsys):
    rc = main(["lab", "all", "--only", "chain,nope", "--store", str(tmp_path / "s.sqlite")])
    assert rc == 2 and "nope" in capsys.readouterr().err

"""What the CLI prints fits an 80-column terminal and survives any stored string: full run ids that `show`
accepts, epoch rows that fit, rich markup and control characters in paths and stored configs printed as text."""

import json
import re
import sqlite3

from conftest import run_cli

from gradwatch import lab
from gradwatch.cli.train import EPOCH_COLUMNS, EpochLines
from gradwatch.store import RunStore

NARROW = {"COLUMNS": "80"}


def test_runs_at_80_columns_shows_whole_ids_that_show_accepts(tmp_path):
    store = tmp_path / "runs.sqlite"
    ids = [lab.train(lab.Config(depth=1, width=4, epochs=1, steps=1, seed=s), store=str(store)).id for s in (0, 1)]
    p = run_cli("runs", "--store", str(store), env=NARROW)
    assert p.returncode == 0, p.stderr
    assert max(len(line) for line in p.stdout.splitlines()) <= 80
    shown = re.findall(r"\b\d{8}-\d{6}-\d{3}[0-9a-f]{8}\b", p.stdout)
    assert sorted(shown) == sorted(ids)  # every id whole, read back from the table
    s = run_cli("show", shown[0], "--store", str(store), env=NARROW)
    assert s.returncode == 0 and f"run {shown[0]}" in s.stdout


def test_epoch_rows_fit_80_columns_with_every_metric():
    m = {"epoch": 100, "seconds": 1234.5, **{k: -1.23456e-05 for k, _ in EPOCH_COLUMNS}}
    lines = EpochLines()
    header, row = lines.header(m), lines.row(m)
    assert len(header) <= 80 and len(row) <= 80 and len(header) == len(row)
    assert row.split()[1:-1] == ["-1.2e-05"] * len(EPOCH_COLUMNS)
    m.update({k: 0.123456 for k, _ in EPOCH_COLUMNS})
    assert lines.row(m).split()[1:-1] == ["0.1235"] * len(EPOCH_COLUMNS)


def _tamper(store, **config_values):
    """A store received from someone else: a stored config holding markup and an ANSI escape."""
    conn = sqlite3.connect(store)
    rid, cfg = conn.execute("SELECT id, config FROM runs").fetchone()
    conn.execute("UPDATE runs SET config = ?, error = ? WHERE id = ?",
                 (json.dumps({**json.loads(cfg), **config_values}), "[/]\x1b[2J", rid))
    conn.commit()
    conn.close()
    return rid


def test_markup_and_escapes_in_paths_and_stored_values_are_printed_as_text(tmp_path):
    store = tmp_path / "a[/]b [bold]" / "runs.sqlite"
    p = run_cli("train", "--depth", "1", "--width", "4", "--epochs", "1", "--steps", "1", "--store", str(store),
                env=NARROW)
    assert p.returncode == 0, p.stderr
    assert str(store) in p.stdout.replace("\n", "")
    rid = _tamper(store, activation="[/]\x1b[31mred", init="[bold]x")
    for args in (["runs"], ["show", rid]):
        q = run_cli(*args, "--store", str(store), env=NARROW)
        assert q.returncode == 0 and "Traceback" not in q.stderr, q.stderr
        assert "\x1b" not in q.stdout and "\\x1b[31mred" in q.stdout.replace("\n", "").replace(" ", "")
    with RunStore(store) as db:
        assert db.get(rid)["config"]["activation"] == "[/]\x1b[31mred"  # stored as given, only shown escaped


def test_in_a_terminal_the_bar_stays_below_whole_epoch_rows(tmp_path, monkeypatch):
    """The bar and the rows share one console, so every row reaches the terminal whole, above the bar."""
    import io

    from rich.console import Console

    from gradwatch.cli import main
    from gradwatch.cli import train as train_cli

    screen = io.StringIO()
    monkeypatch.setattr(train_cli, "console", Console(file=screen, force_terminal=True, width=80))
    assert main(["train", "--depth", "1", "--width", "8", "--epochs", "3", "--store", str(tmp_path / "s.sqlite")]) == 0
    with RunStore(tmp_path / "s.sqlite") as db:
        run = db.runs()[0]
        metrics = db.metrics(run["id"])
    lines = EpochLines()
    lines.header({**metrics[0], "seconds": 0})
    text = screen.getvalue()
    assert "━" in text  # the bar was drawn
    for m in metrics:  # each row whole (up to the seconds, measured separately), in order
        row = lines.row({**m, "seconds": 0}).rsplit(" ", 1)[0].rstrip()
        assert row in text, row


def _commands(group, path=()):
    """Every (command path, click command) of the app, groups included."""
    yield path, group
    if hasattr(group, "commands"):  # a group (typer ships its own click: no isinstance)
        for name, sub in group.commands.items():
            yield from _commands(sub, (*path, name))


def test_every_help_text_keeps_its_brackets_and_names_no_internal_numbers():
    """Help is rich markup: an unescaped [x] would vanish (E[x²] printed as E). And the lectures are named, not
    numbered."""
    import typer.main
    from rich.markup import render

    from gradwatch.cli import app

    root = typer.main.get_command(app)
    seen = 0
    for path, command in _commands(root):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        for text in texts:
            seen += 1
            assert render(text).plain.count("[") == text.replace("\\[", "[").count("["), (path, text)
            assert not re.search(r"\b[Ss]eeds? \d{3}|\(\d{3}(, \d{3})*\)|beyond the seeds|lecture seeds", text), (
                path, text)
    assert seen > 300  # every command and option was looked at


def test_input_var_help_shows_its_brackets_at_80_columns():
    p = run_cli("theory", "variance", "--help", env=NARROW)
    assert "E[x²]" in p.stdout


def test_the_diagnosis_is_wrapped_once_to_the_terminal_width(tmp_path):
    """`show` at 80 columns: every line fits, and the words are those the stored diagnosis holds, in order (no
    line folded a second time, nothing lost)."""
    store = tmp_path / "runs.sqlite"
    run = lab.train(lab.Config(depth=6, width=32, activation="sigmoid", init="normal", init_std=0.05,
                               optimizer="sgd", lr=0.1, epochs=1, steps=30), store=str(store))
    stored = str(run.diagnosis)
    assert max(len(line) for line in stored.splitlines()) > 80  # made at 116 columns
    p = run_cli("show", run.id, "--store", str(store), env=NARROW)
    assert p.returncode == 0, p.stderr
    shown = p.stdout[p.stdout.index(stored.splitlines()[0]):]
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert shown.split() == re.sub(r"(\w)-\n\s+", r"\1-", stored).split()  # "update-ratio" joined again


def test_rewrap_keeps_evidence_lines_and_joins_only_wrapped_ones():
    from gradwatch.report.rewrap import rewrap

    text = ("HEADLINE that was long enough to be wrapped at a width of forty\n    columns here\n"
            "    evidence one\n    evidence two\n  remedies:\n    1. a remedy whose words went on past the\n"
            "       width and were wrapped")
    out = rewrap(text, 200, wrapped_at=40)
    assert out.splitlines() == [
        "HEADLINE that was long enough to be wrapped at a width of forty columns here", "    evidence one",
        "    evidence two", "  remedies:", "    1. a remedy whose words went on past the width and were wrapped"]
    assert rewrap(out, 40, wrapped_at=200) .splitlines()[-2:] == ["    1. a remedy whose words went on past",
                                                                 "       the width and were wrapped"]

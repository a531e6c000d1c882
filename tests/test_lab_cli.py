"""`gradwatch train`, `gradwatch runs`, `gradwatch show` as a user runs them (subprocesses)."""

import json

from conftest import run_cli


def test_train_with_no_options_trains_a_sensible_default(tmp_path):
    p = run_cli("train", "--json", "--store", str(tmp_path / "runs.sqlite"))
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["config"]["dataset"] == "digits" and d["status"] == "completed"
    assert len(d["metrics"]) == d["config"]["epochs"]
    assert d["metrics"][-1]["test_accuracy"] > 0.9  # a 3×100 ReLU net on digits, 10 epochs of Adam


def test_train_prints_a_line_per_epoch_then_runs_and_show(tmp_path):
    store = str(tmp_path / "runs.sqlite")
    p = run_cli("train", "--depth", "2", "--width", "16", "--epochs", "2", "--activation", "tanh",
                "--sizes", "16,8", "--no-shuffle", "--store", store)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("epoch"))
    assert "test acc" in lines[header]  # a header, then one row per epoch
    assert [line.split()[0] for line in lines[header + 1:header + 3]] == ["1", "2"]
    run_id = p.stdout.split("run ")[-1].split()[0]
    listed = run_cli("runs", "--json", "--store", store)
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [run_id]
    assert rows[0]["config"]["sizes"] == [16, 8] and rows[0]["config"]["shuffle"] is False
    table = run_cli("runs", "--store", store)
    assert table.returncode == 0 and run_id[:8] in table.stdout
    shown = run_cli("show", run_id, "--store", store)
    assert shown.returncode == 0, shown.stderr
    assert "metrics per epoch" in shown.stdout and "activation=tanh" in shown.stdout
    as_json = json.loads(run_cli("show", run_id[:15], "--json", "--store", store).stdout)
    assert [m["epoch"] for m in as_json["metrics"]] == [1, 2]


def test_recurrent_run_from_the_cli(tmp_path):
    p = run_cli("train", "--model", "gru", "--dataset", "adding", "--seq-len", "8", "--width", "8",
                "--n-train", "100", "--n-test", "50", "--epochs", "1", "--tbptt", "4,6",
                "--store", str(tmp_path / "r.sqlite"))
    assert p.returncode == 0, p.stderr
    assert "‖∂L/∂h_t‖" in p.stdout


def _one_line_error(p, *needles):
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    for n in needles:
        assert n in p.stderr


def test_bad_train_options_exit_2_with_one_line(tmp_path):
    store = str(tmp_path / "s.sqlite")
    _one_line_error(run_cli("train", "--depth", "0", "--store", store), "--depth 0", "≥ 1")
    _one_line_error(run_cli("train", "--model", "rnn", "--dataset", "adding", "--seq-len", "10", "--tbptt",
                            "5,50", "--store", store), "--tbptt", "T = 10")
    _one_line_error(run_cli("train", "--sizes", "a,b", "--store", store), "--sizes", "comma-separated")
    _one_line_error(run_cli("train", "--init", "nope", "--store", store), "--init 'nope'", "xavier_uniform")


def test_show_unknown_run_exits_2(tmp_path):
    store = str(tmp_path / "s.sqlite")
    from gradwatch.store import RunStore

    RunStore(store).close()  # an empty store (listing one never creates it)
    _one_line_error(run_cli("show", "nope", "--store", store), "nope", "gradwatch runs")

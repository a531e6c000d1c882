"""The example scripts run as written and print what their docstrings say."""

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_watch_sigmoid_example_reports_vanishing_in_the_early_layers(capsys):
    runpy.run_path(str(EXAMPLES / "watch_sigmoid.py"), run_name="__main__")
    out = " ".join(capsys.readouterr().out.split())  # titles may wrap at the table's width
    assert "gradwatch: 7 layers, 20 recorded steps (last: 19)" in out
    assert "activations and backward gains (last sampled step 10; global)" in out
    assert "VANISHING in hidden1, hidden2, hidden3, hidden4, hidden5 (from step 0)" in out

"""``gradwatch theory ...``: JSON output equals the library's numbers, plots are written, bad input is one line."""

import json

import pytest

from gradwatch.cli import main
from gradwatch.theory import chain, mean_field, nielsen_optimum, variance_propagation


def _json(capsys, *args):
    assert main(["theory", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_chain_json_equals_library(capsys):
    d = _json(capsys, "chain", "--weights", "1.5,-2,0.7", "--biases", "0,0.1,0.2", "--x", "0.3", "--target", "0")
    ref = chain([1.5, -2, 0.7], [0, 0.1, 0.2], 0.3, loss_grad=lambda y: y)
    assert d["grad_b"] == ref.grad_b and d["bound_b"] == ref.bound_b


def test_chain_table(capsys):
    assert main(["theory", "chain", "--weights", "1,2,3", "--activation", "tanh"]) == 0
    out = capsys.readouterr().out
    assert "∂C/∂b_j" in out and "3-layer tanh chain" in out


def test_nielsen_json(capsys):
    d = _json(capsys, "nielsen", "--w", "5,10")
    assert d["optimum"]["weight"] == nielsen_optimum().weight
    assert [r["w"] for r in d["widths"]] == [5.0, 10.0] and d["min_weight"] == 4.0


def test_meanfield_json_equals_library(capsys):
    d = _json(capsys, "meanfield", "--activation", "relu", "--sigma-w2", "1.5", "--sigma-b2", "0.1",
              "--depth", "10")
    mf = mean_field("relu", 1.5, 0.1)
    assert d["chi1"] == mf.chi1 and d["q_star"] == mf.q_star and d["phase"] == "ordered"
    assert d["gradient_growth"] == pytest.approx(0.75 ** 10)
    assert d["critical_sigma_w2"] == pytest.approx(2.0)


def test_meanfield_plot_is_written(tmp_path, capsys):
    path = tmp_path / "phase.png"
    assert main(["theory", "meanfield", "--activation", "relu", "--plot", str(path), "--grid", "4"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_variance_json_equals_library(capsys):
    d = _json(capsys, "variance", "--sizes", "30,20,20,5", "--activation", "relu", "--init", "he_normal")
    assert d["grad_norm"] == variance_propagation([30, 20, 20, 5], "relu", "he_normal").grad_norm


def test_compare_json_and_plot(tmp_path, capsys):
    path = tmp_path / "cmp.png"
    d = _json(capsys, "compare", "--width", "16", "--depth", "2", "--nets", "1", "--examples", "2",
              "--plot", str(path))
    assert len(d["measured"]) == len(d["predicted"]) == 3
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["meanfield", "--sigma-b2", "-1"], "--sigma-b2 -1.0 is not allowed"),
    (["meanfield", "--activation", "swish"], "--activation 'swish' is not allowed"),
    (["chain", "--weights", "a,b"], "--weights 'a,b' is not allowed"),
    (["variance", "--sizes", "10,2.5"], "--sizes '10,2.5' is not allowed"),
])
def test_bad_input_is_one_line_exit_2(args, message, capsys):
    assert main(["theory", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err

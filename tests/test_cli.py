"""The command line: help, version, the main job in a subprocess, and every bad input."""

import json

import pytest

from gradwatch import __version__
from gradwatch.cli import main

from conftest import run_cli


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gradwatch {__version__}"


def test_help_lists_subcommands(capsys):
    assert main(["--help"]) == 0
    assert "lab" in capsys.readouterr().out


def test_lab_list(capsys):
    assert main(["lab", "--list"]) == 0
    assert "paralysis" in capsys.readouterr().out


def test_paralysis_subprocess_json_and_out(tmp_path):
    p = run_cli("lab", "paralysis", "--json", "--out", str(tmp_path), "--depth", "3", "--width", "20")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["layers"] == ["hidden1", "hidden2", "hidden3", "output"]
    assert d["neurons"] == [20, 20, 20, 10] and len(d["mean_abs_grad"]) == 4
    assert d["config"]["activation"] == "sigmoid"
    assert json.loads((tmp_path / "paralysis.json").read_text())["mean_abs_grad"] == d["mean_abs_grad"]
    assert (tmp_path / "paralysis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paralysis_subprocess_table():
    p = run_cli("lab", "paralysis")
    assert p.returncode == 0, p.stderr
    for word in ("hidden1", "hidden5", "output", "mean |∂C/∂W|", "neurons"):
        assert word in p.stdout


def test_bad_input_in_a_subprocess_has_no_traceback():
    p = run_cli("lab", "paralysis", "--activation", "foo")
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "--activation 'foo'" in p.stderr and "sigmoid" in p.stderr


BAD = [
    (["--depth", "0"], 2, "--depth 0", "≥ 1"),
    (["--width", "-3"], 2, "--width -3", "≥ 1"),
    (["--activation", "foo"], 2, "--activation 'foo'", "sigmoid, tanh, relu"),
    (["--init", "bad"], 2, "--init 'bad'", "xavier_uniform"),
    (["--dataset", "nope"], 2, "--dataset 'nope'", "digits, mnist, mnist1d"),
    (["--init-std", "-0.5"], 2, "--init-std -0.5", "> 0"),
]


@pytest.mark.parametrize("args, code, named, allowed", BAD, ids=[b[2] for b in BAD])
def test_bad_input_is_one_line(args, code, named, allowed, capsys):
    assert main(["lab", "paralysis", *args]) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert named in err and allowed in err


def test_data_dir_that_does_not_exist(tmp_path, capsys):
    assert main(["lab", "paralysis", "--dataset", "mnist", "--data-dir", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert "--data-dir" in err and "does not exist" in err and "\n" not in err


def test_data_dir_with_corrupt_files(tmp_path, capsys):
    from gradwatch.lab import mnist

    for name in mnist.TEST:
        (tmp_path / name).write_bytes(b"not mnist")
    assert main(["lab", "paralysis", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "md5" in err and "t10k-images-idx3-ubyte.gz" in err and "\n" not in err


def test_empty_data_dir_offline(tmp_path, capsys, no_download):
    assert main(["lab", "paralysis", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 1
    assert "put t10k-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_mnist_via_cli(mnist_dir, capsys):
    assert main(["lab", "paralysis", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["neurons"] == [100] * 5 + [10]

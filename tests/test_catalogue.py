"""The experiment catalogue's machinery: registry, generated CLI commands, JSON/PNG/HTML outputs, gallery."""

import html
import json

import pytest

from gradwatch.cli import main
from gradwatch.errors import ConfigError
from gradwatch.lab import experiments


def test_every_registered_experiment_has_a_claim_and_config():
    for name in experiments.NAMES:
        exp = experiments.get(name)
        assert exp.name == name and exp.claim.endswith(".") and exp.seeds
        assert {"quick", "seed"} <= set(exp.config.model_fields)


def test_unknown_experiment_names_the_choices():
    with pytest.raises(ConfigError, match="experiment='nope'.*paralysis"):
        experiments.get("nope")


def test_experiment_writes_json_png_and_self_contained_html(tmp_path, capsys):
    assert main(["lab", "paralysis", "--quick", "--depth", "2", "--width", "8", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "paralysis.json").read_text())
    assert data["name"] == "paralysis" and data["holds"] in (True, False) and len(data["mean_abs_grad"]) == 3
    page = (tmp_path / "paralysis.html").read_text()
    assert html.escape(data["claim"]) in page and "data:image/png;base64," in page and "<table>" in page
    assert "claim supported" in capsys.readouterr().out


def test_lab_all_runs_the_whole_catalogue_writes_a_gallery_and_one_json(tmp_path, capsys):
    """The whole catalogue once, end to end (each experiment's claim is asserted in its own test file)."""
    assert main(["lab", "all", "--quick", "--out", str(tmp_path), "--store", str(tmp_path / "runs.sqlite"),
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == experiments.NAMES
    index = (tmp_path / "index.html").read_text()
    for name in experiments.NAMES:
        assert f"href='{name}.html'" in index
        assert (tmp_path / f"{name}.html").is_file() and html.escape(data[name]["claim"]) in index
        assert json.loads((tmp_path / f"{name}.json").read_text())["holds"] == data[name]["holds"]

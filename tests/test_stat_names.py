"""The statistics declare themselves: every name is a constant of ``gradwatch.stat_names``, every statistic says
what it measures, where it attaches, its cost and whether it is on by default, and the docs name them all."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from gradwatch import stat_names
from gradwatch.probe import stats
from gradwatch.probe.stats import ALL_STATS, CATALOGUE, DEFAULT_STATS, SAMPLED_STATS, Where, describe

REPO = Path(__file__).resolve().parents[1]
CONSTANTS = {c: getattr(stat_names, c) for c in dir(stat_names) if c.isupper() and c != "STAT_NAMES"}


def test_every_constant_is_one_declared_statistic_and_formats_as_its_name():
    assert sorted(CONSTANTS.values()) == sorted(stat_names.STAT_NAMES) == sorted(CATALOGUE)
    assert all(name == value.upper() for name, value in CONSTANTS.items())
    assert f"{stat_names.GRAD_NORM}/layer" == "grad_norm/layer"  # a plain str: no Enum repr in tracker keys


def test_every_statistic_declares_what_where_cost_and_default():
    for name, d in CATALOGUE.items():
        assert d.name == name and d.doc and d.cost and d.where in get_args(Where), name
        assert describe(name) == d.doc
    with pytest.raises(KeyError):
        describe("grad_nrom")


def test_the_sets_follow_from_the_declarations_unchanged():
    assert DEFAULT_STATS == ("grad_norm", "grad_abs_mean", "grad_abs_max", "nonfinite", "weight_norm",
                             "update_ratio", "grad_norm_preclip", "weight_nonfinite")
    assert DEFAULT_STATS == tuple(stats.STATS) and ALL_STATS == stat_names.STAT_NAMES
    assert SAMPLED_STATS == ("act_mean", "act_std", "act_saturation", "act_dead", "act_nonfinite", "backward_gain",
                             "gain_activation", "grad_hist", "grad_dead")
    assert {s.name for s in stats.FORWARD_STATS.values()} == {n for n in CATALOGUE if n.startswith("act_")}


def test_the_watch_page_names_every_statistic():
    text = (REPO / "docs" / "watch.md").read_text(encoding="utf-8")
    section = text[text.index("## What is recorded"):]
    section = section[: section.index("\n## ", 1)]
    named = set(re.findall(r"^\| (.+?) \|", section, re.M)[1:])  # the rows under the header
    names = {n for cell in named for n in re.findall(r"`([\w*]+)`", cell)}
    for stat in CATALOGUE:
        assert stat in names or ("act_*" in names and stat.startswith("act_")), stat


def test_the_names_import_without_torch():
    code = "import sys, gradwatch.stat_names; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""The trainability phase diagram (quick): its claim on the quick numbers, each part checked another way."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradwatch import lab
from gradwatch.lab.experiments import get
from gradwatch.lab.experiments.trainability import AGREEMENT, TRAINED_ACCURACY, sigma_w2_of


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    store = tmp_path_factory.mktemp("trainability") / "runs.sqlite"
    return get("trainability")(quick=True, store=str(store)), store


def test_claim_holds_on_quick_numbers(result):
    res, _ = result
    n = res.numbers
    assert res.holds, res.evidence
    acc = np.array(n["test_accuracy"])                                   # [depths, σ_w²]
    # 6 ξ_c on the ordered side in closed form: at σ_b² = 0, q* = 0 and χ₁ = σ_w² φ'(0)² = σ_w², ξ_c = −1/ln χ₁
    for s, d6 in zip(n["sigma_w2"], n["trainable_depth"]):
        if s < 1:
            assert d6 == pytest.approx(-6 / math.log(s), rel=1e-6)
    learned = acc >= TRAINED_ACCURACY
    predicted = np.array(n["depths"])[:, None] <= np.array(n["trainable_depth"])[None, :]
    assert np.mean(learned == predicted) >= AGREEMENT
    deepest = acc[-1]
    assert deepest[n["sigma_w2"].index(0.25)] < TRAINED_ACCURACY        # far in the ordered phase: near chance
    band = np.flatnonzero(deepest >= TRAINED_ACCURACY)                    # the σ_w² that still learn, by hand
    assert list(band) == list(range(band[0], band[-1] + 1))              # one band …
    assert n["critical_sigma_w2"] == pytest.approx(1.0, rel=1e-5)        # σ_b² = 0: χ₁ = σ_w² φ'(0)² = 1 at 1
    assert n["sigma_w2"][band[0]] <= 1.0 <= n["sigma_w2"][band[-1]]      # … around the critical σ_w²
    assert n["sigma_w2"][band[-1]] < n["sigma_w2"][-1]                   # closed on the chaotic side too


def test_a_stored_cell_equals_the_same_net_trained_alone(result):
    """One batched member against lab.train of its config (the unbatched path), from the stored run."""
    from gradwatch.store import RunStore

    _, store = result
    with RunStore(store) as db:
        runs = db.runs(status="completed")
    run = next(r for r in runs if r["config"]["depth"] == 2 and sigma_w2_of(r["config"]) == 1.0
               and r["config"]["seed"] == 0)
    alone = lab.train(lab.Config(**run["config"]))
    assert run["summary"]["test_accuracy"] == pytest.approx(alone.summary()["test_accuracy"], abs=2e-3)
    assert run["summary"]["test_loss"] == pytest.approx(alone.summary()["test_loss"], rel=1e-3)


def test_rerun_reads_the_store_instead_of_training(result):
    res, store = result
    again = get("trainability")(quick=True, store=str(store))
    assert again.numbers["trained_now"] == 0 and again.numbers["test_accuracy"] == res.numbers["test_accuracy"]

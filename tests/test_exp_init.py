"""init (He et al. 2015): 30-layer Xavier stays at chance while He trains; He starts earlier at 22 layers."""

import math

import pytest

from gradwatch.lab.experiments import get


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return get("init")(quick=True, store=str(tmp_path_factory.mktemp("store") / "runs.sqlite"))


def test_deep_xavier_stays_at_chance_while_he_trains(result):
    runs = result.numbers["runs"]
    xavier, he = runs["30 layers, Xavier √(1/n)"], runs["30 layers, He √(2/n)"]
    assert abs(xavier["train_loss"][-1] - math.log(10)) < 0.05 * math.log(10)
    assert min(he["train_loss"]) < 0.7 * math.log(10)
    assert result.holds


def test_he_starts_earlier_at_22_layers(result):
    runs = result.numbers["runs"]
    he = runs["22 layers, He √(2/n)"]["first_epoch_below_0.9_ln10"]
    xavier = runs["22 layers, Xavier √(1/n)"]["first_epoch_below_0.9_ln10"]
    assert he is not None and (xavier is None or he < xavier)


def test_xavier_first_layer_gradient_is_far_below_he_at_init(result):
    """Under Xavier every ReLU layer halves the signal's second moment: after 30 layers the first layer's
    gradient is orders of magnitude below He's (the backward pass loses a factor √2 per layer, 2^14.5 ≈ 2e4
    over 29 layers)."""
    runs = result.numbers["runs"]
    x = runs["30 layers, Xavier √(1/n)"]["grad_norm_at_init"][0]
    h = runs["30 layers, He √(2/n)"]["grad_norm_at_init"][0]
    assert x < 1e-2 * h


def test_runs_are_stored(result):
    assert len(result.run_ids) == 4 and len(set(result.run_ids)) == 4

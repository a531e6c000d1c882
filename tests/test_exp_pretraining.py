"""The pretraining experiment (seed 000, remedy f) in quick mode, on two seeds."""

import pytest

from gradwatch.lab.experiments import get


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def result(request, tmp_path_factory):
    store = tmp_path_factory.mktemp("pre") / "runs.sqlite"
    return get("pretraining")(quick=True, seed=request.param, store=str(store))


def test_pretrained_net_learns_where_the_random_one_stays_at_chance(result):
    acc = result.numbers["train_accuracy"]
    assert acc["random init"] < 0.2, acc  # 10 classes: chance is 0.1
    assert acc["pretrained"] > acc["random init"] + 0.25, acc
    assert result.numbers["test_accuracy"]["pretrained"] > result.numbers["test_accuracy"]["random init"] + 0.2
    assert result.holds and len(result.run_ids) == 2


def test_pretraining_lifts_the_first_layer_gradient_relative_to_the_output(result):
    ratio = result.numbers["first_over_output_grad"]
    assert ratio["pretrained"] > 10 * ratio["random init"], ratio
    g = result.numbers["grad_norm_first_step"]["random init"]
    assert g["layers"] == ["hidden1", "hidden2", "hidden3", "hidden4", "hidden5", "output"]


def test_every_autoencoder_reduced_its_reconstruction_error(result):
    rec = result.numbers["reconstruction"]
    assert [r["layer"] for r in rec] == [f"hidden{i}" for i in range(1, 6)]
    assert all(r["error_after"] < 0.5 * r["error_before"] for r in rec), rec

"""paralysis, 'the same net after training': trained gradients against autograd, the claim on two seeds."""

import numpy as np
import pytest
import torch

from gradwatch.lab.experiments import paralysis
from gradwatch.lab.experiments.paralysis import ParalysisConfig
from gradwatch.store import RunStore
from test_paralysis import _by_hand


@pytest.fixture(scope="module")
def sgd_runs(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("runs") / "runs.sqlite")
    return store, {seed: paralysis.EXPERIMENT(quick=True, seed=seed, store=store) for seed in (0, 1)}


def test_trained_numbers_equal_autograd_on_the_trained_weights(tmp_path):
    cfg = ParalysisConfig(quick=True, train_steps=30, store=str(tmp_path / "r.sqlite"))
    trained = paralysis.train_and_measure(cfg)
    _, x, y, _ = paralysis.prepare(cfg)
    linears = [m for m in trained.model if isinstance(m, torch.nn.Linear)]
    expected = _by_hand([m.weight for m in linears], [m.bias for m in linears], x, y)
    np.testing.assert_allclose(trained.mean_abs_grad, expected, rtol=1e-4)
    assert trained.steps == 30
    before = paralysis.run(cfg).mean_abs_grad
    assert not np.allclose(trained.mean_abs_grad, before)  # the weights did move


@pytest.mark.parametrize("seed", [0, 1])
def test_plain_sgd_leaves_the_net_paralysed(sgd_runs, seed):
    store, results = sgd_runs
    r = results[seed]
    t = r.numbers["trained"]
    assert t["steps"] == paralysis.QUICK_TRAIN_STEPS and t["optimizer"] == "sgd"
    assert all(a < b for a, b in zip(t["mean_abs_grad"], t["mean_abs_grad"][1:]))
    assert t["mean_abs_grad"][-1] / t["mean_abs_grad"][0] > 1e3        # still thousands of times slower
    assert t["test_accuracy"] < 0.2                                    # chance is 0.1 on 10 digits
    assert r.holds and r.run_ids == [t["run_id"]]
    assert t["run_id"] in {row["id"] for row in RunStore(store).runs()}
    assert {"layers", "neurons", "mean_abs_grad", "ratio_to_next", "seed_table"} <= set(r.numbers)


def test_adam_lifts_what_sgd_does_not(sgd_runs, tmp_path):
    adam = paralysis.EXPERIMENT(quick=True, optimizer="adam", lr=1e-3, store=str(tmp_path / "r.sqlite"))
    assert adam.numbers["trained"]["span"] < sgd_runs[1][0].numbers["trained"]["span"] / 10


def test_train_steps_zero_skips_training():
    r = paralysis.EXPERIMENT(quick=True, train_steps=0)
    assert "trained" not in r.numbers and r.run_ids == [] and len(r.tables) == 1

"""The batchnorm experiment (Ioffe & Szegedy 2015 §4.1, seed 001) in quick mode, and its pieces against NumPy."""

import numpy as np
import pytest
import torch
from torch import nn

from gradwatch import lab
from gradwatch.lab.experiments import get
from gradwatch.lab.experiments.batchnorm import PercentileTracker, fold_check, sigmoid_input


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def result(request, tmp_path_factory):
    store = tmp_path_factory.mktemp("bn") / "runs.sqlite"
    return get("batchnorm")(quick=True, seed=request.param, store=str(store))


def test_bn_reaches_a_higher_test_accuracy_at_the_same_step(result):
    early = result.numbers["early"]["test_accuracy"]
    final = result.numbers["final_test_accuracy"]
    assert early["BN"] > early["no BN"] + 0.3, early  # a quarter of the way: BN trained, the plain net barely
    assert final["BN"] > final["no BN"] + 0.1, final
    assert result.holds


def test_the_last_layer_sigmoid_input_drifts_without_bn_and_stays_put_with_it(result):
    drift = result.numbers["percentile_drift"]
    assert drift["BN"] < 0.5 * drift["no BN"], drift
    for label in ("BN", "no BN"):
        p = np.asarray(result.numbers["percentiles"][label]["p15_p50_p85"])
        assert np.all(p[:, 0] <= p[:, 1]) and np.all(p[:, 1] <= p[:, 2])  # 15th ≤ 50th ≤ 85th at every snapshot


def test_bn_still_trains_at_ten_times_the_learning_rate(result):
    final = result.numbers["final_test_accuracy"]
    assert final["BN, lr ×10"] > 0.9 and final["BN, lr ×10"] > final["no BN, lr ×10"] + 0.1, final


def test_folding_leaves_the_trained_outputs_unchanged(result):
    fold = result.numbers["fold"]
    assert fold["bn_layers_before"] == 3 and fold["bn_layers_after"] == 0
    assert fold["max_abs_diff"] < 1e-4 * max(1.0, fold["max_abs_logit"]) and fold["same_predictions"] == 1.0
    assert len(result.run_ids) == 4


def _bn_net(seed=0):
    torch.manual_seed(seed)
    cfg = lab.Config(depth=2, width=7, activation="sigmoid", norm="batch")
    from gradwatch.lab.models import build_model

    model = build_model(cfg, 5, 3).double()
    for m in model.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model


def _numpy_eval_forward(model, x):
    """y = γ (Wx + b − μ)/√(σ² + ε) + β, then σ, layer by layer; the output layer linear. Float64 NumPy."""
    h = x.numpy()
    mods = dict(model.named_children())
    for i in (1, 2):
        lin, bn = mods[f"hidden{i}"], mods[f"norm{i}"]
        z = h @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
        z = (z - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps)
        z = bn.weight.detach().numpy() * z + bn.bias.detach().numpy()
        h = 1 / (1 + np.exp(-z))
    return h @ mods["output"].weight.detach().numpy().T + mods["output"].bias.detach().numpy()


def test_folded_net_equals_the_seed_formula_in_numpy():
    model = _bn_net()
    x = torch.randn(11, 5, dtype=torch.float64)
    folded = lab.fold_batchnorm(model)
    np.testing.assert_allclose(folded(x).detach().numpy(), _numpy_eval_forward(model, x), rtol=1e-12, atol=1e-12)
    assert fold_check(model, x)["max_abs_diff"] < 1e-12 and model.training  # the model is left as it was


def test_sigmoid_input_uses_the_batch_statistics_without_touching_the_running_ones():
    model = _bn_net(1)
    x = torch.randn(40, 5, dtype=torch.float64)
    bn, lin = model.norm1, model.hidden1
    running = bn.running_mean.clone()
    z = (x @ lin.weight.T + lin.bias).detach().numpy()
    by_hand = (z - z.mean(0)) / np.sqrt(z.var(0) + bn.eps) * bn.weight.detach().numpy() + bn.bias.detach().numpy()
    np.testing.assert_allclose(sigmoid_input(model, x, 1).detach().numpy(), by_hand, rtol=1e-10, atol=1e-12)
    assert torch.equal(bn.running_mean, running)
    tracker = PercentileTracker(x, 1, 2, steps={3})
    tracker(2, model)
    tracker(3, model)
    assert tracker.steps == [3]
    np.testing.assert_allclose(tracker.values[0], np.percentile(by_hand[:, 2], [15, 50, 85]), rtol=1e-10)

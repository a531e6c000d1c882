"""The clipping experiment (seeds 000, 002, 003) in quick mode, and δ_j against seed 003's recursion in NumPy."""

import numpy as np
import pytest
import torch

from gradwatch import lab
from gradwatch.lab.experiments import get
from gradwatch.lab.experiments.clipping import delta_profile, input_gradients, spectral_norms
from gradwatch.lab.models import build_model, linear_layers


@pytest.fixture(scope="module", params=[0, 2], ids=["seed0", "seed2"])
def result(request, tmp_path_factory):
    store = tmp_path_factory.mktemp("clip") / "runs.sqlite"
    return get("clipping")(quick=True, seed=request.param, store=str(store))


def test_plain_sgd_diverges_and_clipping_by_norm_or_value_trains(result):
    loss, acc = result.numbers["final_train_loss"], result.numbers["final_accuracy"]
    assert not np.isfinite(loss["no remedy"]) and acc["no remedy"] == 0.0
    for label in ("clip norm 1", "clip value 0.01"):
        assert np.isfinite(loss[label]) and acc[label] > 0.4, (label, loss[label], acc[label])  # chance: 0.1
    assert result.numbers["first_grad_norm"]["clip norm 1"] == pytest.approx(1.0, rel=1e-4)  # what SGD steps on
    assert result.holds


def test_the_exploding_init_amplifies_delta_toward_the_input(result):
    d = result.numbers["delta_at_init"]["no remedy"]
    assert d["input_over_output"] > 100 and d["share_nonincreasing"] < 0.2, d


def test_spectral_constraint_gives_nonincreasing_delta_at_every_layer(result):
    assert result.numbers["delta_at_init"]["‖W‖₂ ≤ 1"]["share_nonincreasing"] == 1.0
    assert result.numbers["delta_constrained_trained"]["share_nonincreasing"] == 1.0
    assert max(result.numbers["spectral_norms_constrained"]) <= 1 + 1e-5


def _numpy_deltas(model, x, y):
    """Seed 003: δ_{n+1} = ∂L/∂logits, δ_j = W_jᵀ(δ_{j+1} ⊙ σ'(W_j z_j + b_j)) (σ' = 1 for the output map); NumPy."""
    maps = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy()) for _, m in linear_layers(model)]
    zs, pre = [x.double().numpy()], []
    for i, (w, b) in enumerate(maps):
        u = zs[-1] @ w.T + b
        pre.append(u)
        zs.append(np.maximum(u, 0) if i < len(maps) - 1 else u)
    p = np.exp(zs[-1] - zs[-1].max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y.numpy()] -= 1
    deltas = [p / len(y)]
    for i in reversed(range(len(maps))):
        slope = (pre[i] > 0).astype(float) if i < len(maps) - 1 else np.ones_like(pre[i])
        deltas.insert(0, (deltas[0] * slope) @ maps[i][0])
    return np.stack([np.linalg.norm(d, axis=1) for d in deltas], axis=1)


@pytest.mark.parametrize("init", ["normal", "orthogonal"])
def test_input_gradients_equal_the_seed_recursion(init):
    cfg = lab.Config(depth=4, width=9, activation="relu", init=init, init_std=0.5)
    model = build_model(cfg, 6, 3, generator=torch.Generator().manual_seed(0)).double()
    x, y = torch.randn(17, 6, dtype=torch.float64), torch.randint(0, 3, (17,))
    got = input_gradients(model, x, y)
    np.testing.assert_allclose(got.numpy(), _numpy_deltas(model, x, y), rtol=1e-10)
    assert all(p.grad is None for p in model.parameters())
    if init == "orthogonal":  # square hidden maps have ‖W‖₂ = 1: the bound must hold exactly
        assert delta_profile(got[:, 1:])["share_nonincreasing"] == 1.0
        assert spectral_norms(model)[1:-1] == pytest.approx([1.0] * 3)

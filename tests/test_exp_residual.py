"""The residual experiment (seed 003) in quick mode: degradation of plain nets, residual and stochastic depth."""

import numpy as np
import pytest
import torch

from gradwatch import lab
from gradwatch.lab.experiments import get
from gradwatch.lab.experiments.trained import first_step_layer_norms


@pytest.fixture(scope="module", params=[(0, None), (1, [2, 32])], ids=["seed0", "seed1-2,32"])
def result(request, tmp_path_factory):
    seed, depths = request.param
    store = tmp_path_factory.mktemp("res") / "runs.sqlite"
    return get("residual")(quick=True, seed=seed, depths=depths, store=str(store))


def test_plain_nets_degrade_with_depth_and_residual_nets_do_not(result):
    err = result.numbers["train_error"]
    assert err["plain"][-1] > err["plain"][0] + 0.3, err  # 32 plain layers: far worse *training* error
    assert err["residual"][-1] < 0.05 and err["residual"][-1] < err["plain"][-1] - 0.3, err
    assert result.holds


def test_stochastic_depth_still_trains_the_deepest_residual_net(result):
    sd = result.numbers["stochastic_depth"]
    assert sd["depth"] == max(result.numbers["depths"]) and sd["train_error"] < 0.05, sd


def test_per_layer_gradients_spread_far_more_in_the_plain_net(result):
    g = result.numbers["grad_norm_at_init"]
    plain, res = np.asarray(g["plain"]["grad_norm"][:-1]), np.asarray(g["residual"]["grad_norm"][:-1])
    assert len(plain) == len(res) == max(result.numbers["depths"])
    spread = lambda g: g.max() / g.min()  # noqa: E731
    assert spread(plain) > 100 and spread(res) < spread(plain) / 5, (plain, res)


def test_first_step_layer_norms_equal_the_gradients_read_directly():
    seen = {}

    def read(step, model):
        if step == 1:
            seen.update({name: float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in m.parameters())))
                         for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})

    run = lab.train(lab.Config(depth=3, width=8, residual=True, norm="batch", steps=2, epochs=1), on_step=read)
    names, norms = first_step_layer_norms(run)
    assert names == list(seen) and "block1.proj" in names
    np.testing.assert_allclose(norms, list(seen.values()), rtol=1e-5)

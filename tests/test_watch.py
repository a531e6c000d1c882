"""The watch's default statistics against independent computations, its schedule, history and clean detach."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.probe import History
from gradwatch.errors import ConfigError


def _mlp(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 4)).to(dtype)


def _batch(seed=0, n=16, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g, dtype=dtype), torch.randint(0, 4, (n,), generator=g)


def _by_hand(model):
    """Per-layer numbers from the concatenated .grad / parameters, layer by layer, in float64."""
    out = {"grad_norm": [], "grad_abs_mean": [], "grad_abs_max": [], "weight_norm": []}
    for m in model:
        if isinstance(m, nn.Linear):
            g = torch.cat([m.weight.grad.reshape(-1), m.bias.grad.reshape(-1)]).double()
            w = torch.cat([m.weight.reshape(-1), m.bias.reshape(-1)]).detach().double()
            out["grad_norm"].append(torch.linalg.vector_norm(g).item())
            out["grad_abs_mean"].append(g.abs().mean().item())
            out["grad_abs_max"].append(g.abs().max().item())
            out["weight_norm"].append(torch.linalg.vector_norm(w).item())
    return out


def test_layers_are_modules_that_own_parameters_input_side_first():
    with gw.watch(_mlp()) as w:
        pass
    assert w.history.layers == ["0", "2", "4"]
    assert w.history.activations == ["tanh", "relu", None]


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
def test_default_statistics_equal_the_concatenated_gradients(optimizer):
    model = _mlp()
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd_momentum"
           else torch.optim.Adam(model.parameters(), lr=1e-2))
    expected = {k: [] for k in ("grad_norm", "grad_abs_mean", "grad_abs_max", "weight_norm", "update_ratio")}
    with gw.watch(model, optimizer=opt, flush_every=2, sample_every=1) as w:
        for step in range(5):
            x, y = _batch(step)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            hand = _by_hand(model)
            before = [torch.cat([p.detach().reshape(-1).clone() for p in m.parameters()]) for m in model[::2]]
            opt.step()
            after = [torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in model[::2]]
            for k, v in hand.items():
                expected[k].append(v)
            expected["update_ratio"].append([((a - b).norm() / b.norm()).item() for a, b in zip(after, before)])
    h = w.history
    assert h.steps.tolist() == [0, 1, 2, 3, 4]
    for name, values in expected.items():
        np.testing.assert_allclose(h.stat(name), np.array(values), rtol=1e-5, err_msg=name)
    assert (h.stat("nonfinite") == 0).all()
    assert np.isnan(h.stat("grad_norm_preclip")).all()  # the loop did not clip


def test_without_optimizer_step_records_and_every_skips_steps():
    model = _mlp()
    w = gw.watch(model, every=3)
    rows = []
    for step in range(7):
        model.zero_grad()
        x, y = _batch(step)
        nn.functional.cross_entropy(model(x), y).backward()
        if step % 3 == 0:
            rows.append(_by_hand(model)["grad_norm"])
        w.step()
    w.close()
    assert w.history.steps.tolist() == [0, 3, 6]
    assert "update_ratio" not in w.history.stats
    np.testing.assert_allclose(w.history.stat("grad_norm"), rows, rtol=1e-6)


def test_gradient_accumulation_describes_the_accumulated_gradient():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with gw.watch(model, optimizer=opt) as w:
        opt.zero_grad()
        for micro in range(3):
            x, y = _batch(micro, n=8)
            (nn.functional.cross_entropy(model(x), y) / 3).backward()
        hand = _by_hand(model)  # the sum of the three micro-batch gradients now in .grad
        opt.step()
    np.testing.assert_allclose(w.history.stat("grad_abs_mean")[0], hand["grad_abs_mean"], rtol=1e-6)


def test_param_names_restricts_to_weights():
    model = _mlp()
    with gw.watch(model, param_names=("weight",)) as w:
        x, y = _batch()
        nn.functional.cross_entropy(model(x), y).backward()
        w.step()
    expected = [m.weight.grad.abs().mean().item() for m in model[::2]]
    np.testing.assert_allclose(w.history.stat("grad_abs_mean")[0], expected, rtol=1e-6)


def test_layer_without_gradient_is_nan_not_zero():
    model = _mlp()
    with gw.watch(model) as w:
        x, y = _batch()
        model[4].weight.requires_grad_(False)
        model[4].bias.requires_grad_(False)
        nn.functional.cross_entropy(model(x), y).backward()
        w.step()
    g = w.history.stat("grad_norm")[0]
    assert np.isfinite(g[:2]).all() and np.isnan(g[2])


def test_no_hooks_remain_after_exit_even_with_every_statistic():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with gw.watch(model, optimizer=opt, stats="full", sample_every=1) as w:
        x, y = _batch()
        nn.functional.cross_entropy(model(x), y).backward()
        assert any(m._forward_hooks for m in model.modules())  # sampled step: hooks are on
        opt.step()
    assert w.closed
    for m in model.modules():
        assert not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks
    w.close()  # a second close is harmless
    with pytest.raises(RuntimeError, match="closed"):
        w.step()


def test_history_round_trips_through_json_and_pandas():
    model = _mlp()
    with gw.watch(model) as w:
        for step in range(3):
            model.zero_grad()
            x, y = _batch(step)
            nn.functional.cross_entropy(model(x), y).backward()
            w.step()
    h = w.history
    back = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back.layers == h.layers and back.steps.tolist() == h.steps.tolist()
    np.testing.assert_allclose(back.stat("grad_norm"), h.stat("grad_norm"), rtol=1e-6)
    df = h.to_pandas()
    assert list(df.columns) == ["step", "layer", "stat", "value"]
    assert len(df) == int(np.isfinite(np.stack([h.stat(n) for n in h.stats])).sum())  # NaN rows dropped
    row = df[(df.step == 1) & (df.layer == "2") & (df.stat == "grad_norm")]
    assert row.value.item() == pytest.approx(h.stat("grad_norm")[1, 1])


@pytest.mark.parametrize("kwargs, param", [({"every": 0}, "every"), ({"stats": "most"}, "stats"),
                                           ({"stats": ["grad_norm", "grad_nrom"]}, "stats"),
                                           ({"on_nonfinite": "explode"}, "on_nonfinite"),
                                           ({"sample_every": -1}, "sample_every"),
                                           ({"param_names": ("kernel",)}, "model")],
                         ids=lambda v: str(v))
def test_bad_options_raise_one_config_error(kwargs, param):
    with pytest.raises(ConfigError) as exc:
        gw.watch(_mlp(), **kwargs)
    assert exc.value.param == param and "\n" not in str(exc.value)


def test_unknown_stat_in_history_names_the_recorded_ones():
    with gw.watch(_mlp()) as w:
        pass
    with pytest.raises(ConfigError, match="grad_norm"):
        w.history.stat("act_mean")

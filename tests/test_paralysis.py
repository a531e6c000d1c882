"""The paralysis experiment against independent computations and the seed's qualitative claim."""

import json

import numpy as np
import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.lab.experiments import paralysis
from gradwatch.lab.experiments.paralysis import ParalysisConfig


def _by_hand(weights, biases, x, y):
    """The same net written out: sigmoid hidden layers, linear output, mean cross-entropy; float64 autograd."""
    ws = [w.detach().double().requires_grad_() for w in weights]
    bs = [b.detach().double() for b in biases]
    h = x.double()
    for w, b in zip(ws[:-1], bs[:-1]):
        h = 1.0 / (1.0 + torch.exp(-(h @ w.T + b)))
    logits = h @ ws[-1].T + bs[-1]
    loss = (torch.logsumexp(logits, 1) - logits[torch.arange(len(y)), y]).mean()
    return [g.abs().mean().item() for g in torch.autograd.grad(loss, ws)]


def _output_layer_closed_form(weights, biases, x, y):
    """∂C/∂W_out = (softmax(z) − onehot(y))ᵀ h / B, computed in NumPy from the forward pass only."""
    h = x.double().numpy()
    for w, b in zip(weights[:-1], biases[:-1]):
        h = 1.0 / (1.0 + np.exp(-(h @ w.detach().double().numpy().T + b.detach().double().numpy())))
    z = h @ weights[-1].detach().double().numpy().T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y.numpy()] -= 1.0
    return np.abs(p.T @ h / len(y)).mean()


@pytest.mark.parametrize("seed", [0, 1])
def test_numbers_equal_autograd_on_the_net_written_by_hand(seed):
    cfg = ParalysisConfig(seed=seed, batch_size=300)
    result = paralysis.run(cfg)
    model, x, y, _ = paralysis.prepare(cfg)  # same seed: the same weights and batch
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    expected = _by_hand([m.weight for m in linears], [m.bias for m in linears], x, y)
    np.testing.assert_allclose(result.mean_abs_grad, expected, rtol=1e-4)
    closed = _output_layer_closed_form([m.weight for m in linears], [m.bias for m in linears], x, y)
    assert result.mean_abs_grad[-1] == pytest.approx(closed, rel=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_sigmoid_gradients_grow_monotonically_toward_the_output(seed):
    r = paralysis.run(seed=seed)
    g = r.mean_abs_grad
    assert r.layers == ["hidden1", "hidden2", "hidden3", "hidden4", "hidden5", "output"]
    assert r.neurons == [100] * 5 + [10]
    assert all(a < b for a, b in zip(g, g[1:]))
    assert r.span > 1e3  # the seed's table spans 2.4e5; at least three orders of magnitude here


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_he_normal_stays_within_one_order_of_magnitude(seed):
    g = paralysis.run(activation="relu", init="he_normal", seed=seed).mean_abs_grad
    assert max(g) / min(g) < 10


def test_depth_and_width_shape_the_table():
    r = paralysis.run(depth=3, width=17, batch_size=50)
    assert r.neurons == [17, 17, 17, 10] and len(r.ratio_to_next) == 4 and r.ratio_to_next[-1] is None


def test_result_json_has_the_documented_keys():
    d = json.loads(json.dumps(paralysis.run(depth=2, width=8).to_dict()))
    assert {"layers", "neurons", "mean_abs_grad", "config"} <= set(d)
    assert d["config"]["depth"] == 2 and d["config"]["init_std"] == pytest.approx(300 ** -0.5)


def test_mnist_paralysis_resembles_the_seed(mnist_dir):
    """On real MNIST the per-layer ratio between hidden layers is close to the seed's (~7×)."""
    r = paralysis.run(dataset="mnist", data_dir=str(mnist_dir))
    inner = r.ratio_to_next[1:4]
    assert all(4 < q < 12 for q in inner), inner
    assert r.ratio_to_next[4] > 10  # the jump into the 10-unit output layer (seed: 21×)


@pytest.mark.parametrize("field, value", [("depth", 0), ("width", -3), ("activation", "foo"), ("init", "bad"),
                                          ("dataset", "nope"), ("init_std", 0.0), ("colour", "red")])
def test_bad_config_raises_one_config_error(field, value):
    with pytest.raises(ConfigError) as exc:
        ParalysisConfig(**{field: value})
    assert exc.value.param == field and repr(value) in str(exc.value) and "\n" not in str(exc.value)

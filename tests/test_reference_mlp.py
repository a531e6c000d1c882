"""gradwatch.reference.mlp: seed 003's backward pass against torch autograd (float64, 1e-10) and central finite
differences (1e-6), for five activations, with and without batch norm and residual connections."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import get_activation
from gradwatch.reference import Network, backward, forward, loss_and_gradients

ACTS = ["sigmoid", "tanh", "relu", "elu", "selu"]
VARIANTS = {"plain": {}, "batchnorm": {"batchnorm": True}, "residual": {"residual": True},
            "batchnorm+residual": {"batchnorm": True, "residual": True}}
SIZES = [4, 5, 5, 5, 3]  # three hidden layers; the two 5→5 ones carry skip connections when residual
BATCH = 6


def _problem(activation, variant, seed=0, loss="squared_error"):
    net = Network.random(SIZES, activation, seed=seed, **VARIANTS[variant])
    rng = np.random.default_rng(seed + 100)
    x = rng.normal(size=(SIZES[0], BATCH))
    if loss == "squared_error":
        y = rng.normal(size=(SIZES[-1], BATCH))
    else:
        y = np.eye(SIZES[-1])[:, rng.integers(0, SIZES[-1], BATCH)]
    return net, x, y


def _params(net):
    """Every parameter array of the network, in the order Gradients lists them."""
    return [*net.weights, *net.biases, *net.gammas, *net.betas]


def _grads(g):
    return [*g.weights, *g.biases, *g.gammas, *g.betas]


def _torch_gradients(net, x, y, loss, masks=None):
    """The same network written with torch ops, differentiated by autograd."""
    act = get_activation(net.activation).make().double()
    ts = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in _params(net)]
    n = net.n
    W, b = ts[:n], ts[n:2 * n]
    gam, bet = ts[2 * n:2 * n + len(net.gammas)], ts[2 * n + len(net.gammas):]
    z = torch.tensor(x)
    for j in range(n):
        v = W[j] @ z + b[j][:, None]
        if j == n - 1:
            z = v
            break
        if net.batchnorm:
            v = F.batch_norm(v.T, None, None, gam[j], bet[j], training=True, eps=net.bn_eps).T
        h = act(v)
        if masks is not None:
            h = h * torch.tensor(masks[j + 1])
        z = z + h if (net.residual and W[j].shape[0] == W[j].shape[1]) else h
    yt = torch.tensor(y)
    if loss == "squared_error":
        value = 0.5 * ((z - yt) ** 2).sum()
    else:
        value = F.cross_entropy(z.T, yt.argmax(0), reduction="sum")
    value.backward()
    return value.item(), [t.grad.numpy() for t in ts]


def _finite_differences(net, x, y, loss, h=1e-6):
    out = []
    for p in _params(net):
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + h
            up = loss_and_gradients(net, x, y, loss)[0]
            p[i] = keep - h
            down = loss_and_gradients(net, x, y, loss)[0]
            p[i] = keep
            g[i] = (up - down) / (2 * h)
        out.append(g)
    return out


@pytest.mark.parametrize("loss", ["squared_error", "cross_entropy"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("activation", ACTS)
def test_gradients_equal_autograd(activation, variant, loss):
    net, x, y = _problem(activation, variant, loss=loss)
    value, grads, _ = loss_and_gradients(net, x, y, loss)
    t_value, t_grads = _torch_gradients(net, x, y, loss)
    assert value == pytest.approx(t_value, rel=1e-12)
    assert len(_grads(grads)) == len(t_grads)
    for mine, theirs in zip(_grads(grads), t_grads):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("activation", ACTS)
def test_gradients_equal_central_finite_differences(activation, variant):
    net, x, y = _problem(activation, variant, seed=1)
    _, grads, fp = loss_and_gradients(net, x, y)
    # no pre-activation may sit within the step of a kink, or the difference quotient straddles it
    assert min(np.abs(u).min() for u in fp.u[1:]) > 1e-4
    for mine, fd in zip(_grads(grads), _finite_differences(net, x, y, "squared_error")):
        scale = max(1.0, np.abs(fd).max())
        assert np.abs(mine - fd).max() <= 1e-6 * scale


def test_cross_entropy_gradients_equal_finite_differences():
    net, x, y = _problem("tanh", "batchnorm+residual", seed=2, loss="cross_entropy")
    _, grads, _ = loss_and_gradients(net, x, y, "cross_entropy")
    for mine, fd in zip(_grads(grads), _finite_differences(net, x, y, "cross_entropy")):
        assert np.abs(mine - fd).max() <= 1e-6 * max(1.0, np.abs(fd).max())


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_dropout_gradients_equal_autograd_with_the_same_masks(activation):
    net, x, y = _problem(activation, "residual", seed=3)
    net.dropout_keep = 0.6
    rng = np.random.default_rng(7)
    masks = [None] + [(rng.random((n, BATCH)) < 0.6) * 1.0 for n in SIZES[1:-1]]
    _, grads, fp = loss_and_gradients(net, x, y, masks=masks)
    assert fp.masks[1] is masks[1]
    _, t_grads = _torch_gradients(net, x, y, "squared_error", masks=masks)
    for mine, theirs in zip(_grads(grads), t_grads):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)


def test_dropout_prediction_is_the_expectation_over_masks():
    """Seed 003: "use scaled ρσ in prediction" — exact for the last hidden layer, enumerating all 2^k masks."""
    rho, k = 0.4, 4
    net = Network.random([3, k, 2], "tanh", seed=4, dropout_keep=rho)
    x = np.random.default_rng(5).normal(size=(3, 1))
    expected = np.zeros((2, 1))
    for bits in itertools.product([0.0, 1.0], repeat=k):
        m = np.array(bits).reshape(k, 1)
        p = np.prod(np.where(m == 1, rho, 1 - rho))
        expected += p * forward(net, x, masks=[None, m]).output
    np.testing.assert_allclose(forward(net, x, train=False).output, expected, rtol=1e-12)


def test_deltas_are_the_gradients_with_respect_to_the_states():
    """δ_j = ∂L/∂z_j: δ_1 is the input gradient autograd gives."""
    net, x, y = _problem("elu", "residual", seed=6)
    _, grads, _ = loss_and_gradients(net, x, y)
    xt = torch.tensor(x, requires_grad=True)
    act = get_activation("elu").make().double()
    z = xt
    for j, (w, b) in enumerate(zip(net.weights, net.biases)):
        v = torch.tensor(w) @ z + torch.tensor(b)[:, None]
        z = v if j == net.n - 1 else (z + act(v) if w.shape[0] == w.shape[1] else act(v))
    (0.5 * ((z - torch.tensor(y)) ** 2).sum()).backward()
    np.testing.assert_allclose(grads.delta[1], xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def _unit_spectral_norm_net(activation, seed):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(6, 6)) for _ in range(6)]
    weights = [w / np.linalg.norm(w, 2) * rng.uniform(0.5, 1.0) for w in weights]  # ‖W_j‖₂ ≤ 1
    return Network(weights, [rng.normal(size=6) for _ in weights], activation)


@pytest.mark.parametrize("seed", range(5))
def test_sigmoid_deltas_obey_the_quarter_power_bound(seed):
    """Seed 003: ‖W_j‖ ≤ 1 and max σ' = 1/4 give ‖δ_j‖ ≤ 0.25^{#sigmoids between} ‖δ_{n+1}‖ (σ_n = Id)."""
    net = _unit_spectral_norm_net("sigmoid", seed)
    fp = forward(net, np.random.default_rng(seed).normal(size=6))
    g = backward(net, fp, np.random.default_rng(seed + 1).normal(size=6))
    top = np.linalg.norm(g.delta[net.n + 1])
    for j in range(1, net.n + 1):
        assert np.linalg.norm(g.delta[j]) <= 0.25 ** (net.n - j) * top * (1 + 1e-12)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_one_lipschitz_activations_never_grow_deltas(activation):
    """Seed 003: ‖W_j‖₂ ≤ 1 and a 1-Lipschitz σ give ‖δ_j‖ ≤ ‖δ_{j+1}‖."""
    net = _unit_spectral_norm_net(activation, 9)
    g = backward(net, forward(net, np.ones(6)), np.ones(6))
    norms = [np.linalg.norm(d) for d in g.delta[1:]]
    assert all(a <= b * (1 + 1e-12) for a, b in zip(norms, norms[1:]))


def test_empty_weights_are_refused():
    with pytest.raises(ConfigError, match=r"weights=\[\].*at least one"):
        Network([], [])


def test_unknown_activation_is_refused():
    with pytest.raises(ConfigError, match="activation='swish'.*sigmoid"):
        Network([np.ones((2, 2))], [np.zeros(2)], "swish")


def test_mismatched_shapes_name_the_layer():
    with pytest.raises(ConfigError, match=r"weights\[2\].*3 columns"):
        Network([np.ones((3, 2)), np.ones((2, 4))], [np.zeros(3), np.zeros(2)])


def test_wrong_input_rows_are_refused():
    net = Network.random([3, 2], "tanh")
    with pytest.raises(ConfigError, match=r"x.shape.*3 rows"):
        forward(net, np.ones((4, 2)))


def test_bad_keep_probability_is_refused():
    with pytest.raises(ConfigError, match="dropout_keep=0"):
        Network.random([3, 2], "tanh", dropout_keep=0)


def test_unknown_loss_is_refused():
    net = Network.random([3, 2], "tanh")
    with pytest.raises(ConfigError, match="loss='l1'.*squared_error, cross_entropy"):
        loss_and_gradients(net, np.ones((3, 2)), np.ones((2, 2)), "l1")

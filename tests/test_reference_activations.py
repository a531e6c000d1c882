"""The NumPy σ, σ', σ'' added to gradwatch.nn.activations equal the torch ones and torch's double backward."""

import numpy as np
import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import ACTIVATIONS, get_activation, numpy_activation

X = np.linspace(-6, 6, 1000)  # even count: never exactly at the kink 0


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_numpy_values_and_derivative_equal_torch(name):
    act, np_act = get_activation(name), numpy_activation(name)
    t = torch.tensor(X)
    np.testing.assert_allclose(np_act.fn(X), act(t).numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np_act.deriv(X), act.derivative(t).numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_second_derivative_equals_double_backward(name):
    x = torch.tensor(X, requires_grad=True)
    (d1,) = torch.autograd.grad(get_activation(name).make().double()(x).sum(), x, create_graph=True)
    try:
        d2 = torch.autograd.grad(d1.sum(), x, allow_unused=True)[0] if d1.requires_grad else None
    except RuntimeError as exc:  # hardsigmoid: PyTorch has no double backward; σ' is piecewise constant
        assert "not implemented" in str(exc)
        h = 1e-6
        fd = (get_activation(name).derivative(x.detach() + h) - get_activation(name).derivative(x.detach() - h)) / (2 * h)
        np.testing.assert_allclose(numpy_activation(name).deriv2(X), fd.numpy(), atol=1e-6)
        return
    d2 = torch.zeros_like(x) if d2 is None else d2  # σ' constant on each piece
    np.testing.assert_allclose(numpy_activation(name).deriv2(X), d2.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_alpha_is_bound():
    np.testing.assert_allclose(numpy_activation("leaky_relu", alpha=0.2).fn(np.array([-1.0])), [-0.2])


def test_unknown_name_is_refused():
    with pytest.raises(ConfigError, match="activation='swish'"):
        numpy_activation("swish")

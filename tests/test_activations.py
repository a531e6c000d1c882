import math

import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import ACTIVATIONS, get_activation


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_function_matches_module(name):
    act = get_activation(name)
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    module = act.make().double()
    torch.testing.assert_close(act(x), module(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_derivative_matches_autograd(name):
    act = get_activation(name)
    x = torch.linspace(-6, 6, 1000, dtype=torch.float64, requires_grad=True)  # avoids the kink at 0
    (g,) = torch.autograd.grad(act.make().double()(x).sum(), x)
    torch.testing.assert_close(act.derivative(x.detach()), g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_max_derivative_is_the_sup_on_a_grid(name):
    act = get_activation(name)
    x = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    grid_max = act.derivative(x).abs().max().item()
    assert grid_max == pytest.approx(act.max_derivative(), rel=1e-6)


def test_sigmoid_derivative_peaks_at_one_quarter():
    assert get_activation("sigmoid").max_derivative() == 0.25
    assert get_activation("sigmoid").derivative(torch.zeros(1)).item() == 0.25


def test_unknown_activation_names_the_choices():
    with pytest.raises(ConfigError, match=r"activation='foo'.*sigmoid, tanh, relu"):
        get_activation("foo")

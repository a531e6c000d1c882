"""first-layer-image: the measured spreads against a NumPy linearisation with the real weights, over seeds."""

import math

import numpy as np
import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.lab.data import load_dataset
from gradwatch.lab.experiments import first_layer_image as fli
from gradwatch.lab.models import initialize, mlp


@pytest.fixture(scope="module")
def results():
    return {seed: fli.EXPERIMENT(quick=True, seed=seed) for seed in (0, 1, 2)}


def test_layer1_spread_equals_the_linearisation_with_the_actual_weights():
    """s_1² = mean_j σ'(0)² w_jᵀ Σ_x w_j for the drawn W (NumPy, float64); the sigmoid is linear to O(z³)."""
    cfg = fli.FirstLayerImageConfig(quick=True, seed=3, depth=1)
    x = load_dataset("digits", seed=3).x_test[:300]
    model = mlp([64, 64, 10], "sigmoid")
    initialize(model, "normal", init_std=0.01, generator=torch.Generator().manual_seed(3))
    w = model.hidden1.weight.detach().double().numpy()
    cov = np.cov(x.double().numpy(), rowvar=False, bias=True)
    expected = 0.25 * math.sqrt(np.mean(np.einsum("ji,ik,jk->j", w, cov, w)))
    measured = fli.measure(cfg, "small", "normal", 0.01, x, 10, (8, 8)).spread[0]
    assert measured == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_init_has_little_input_dependent_signal_and_loses_more_per_layer(results, seed):
    n = results[seed].numbers
    small, proper = n["inits"]["N(0, 0.01²)"], n["inits"]["xavier_uniform"]
    gap = [p / s for p, s in zip(proper["spread"], small["spread"])]
    assert gap[0] > 5 and all(b > 2 * a for a, b in zip(gap, gap[1:])), gap
    per_layer = [b / a for a, b in zip(small["spread"], small["spread"][1:])]
    assert per_layer == pytest.approx([0.25 * 0.01 * math.sqrt(64)] * 3, rel=0.15)  # σ'(0)·σ_w·√n
    assert small["spread"] == pytest.approx(small["predicted_spread"], rel=0.15)
    assert max(abs(m - 0.5) for m in small["mean_activation"]) < 1e-2 and max(small["saturated"]) == 0
    assert results[seed].holds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_init_keeps_the_picture_and_a_large_init_saturates(results, seed):
    n = results[seed].numbers
    for r in n["inits"].values():  # noise level: E|r| = √(2/(πn)) for unrelated images
        assert r["pixel_correlation"] < 2 * n["chance_correlation"]
    large = n["inits"]["N(0, 1²)"]
    assert large["saturated"][0] > 0.2 and large["spread"][0] < 0.6 * large["predicted_spread"][0]


def test_mnist_first_layer_is_an_image_of_the_input_grid(mnist_dir):
    r = fli.EXPERIMENT(quick=True, dataset="mnist", data_dir=str(mnist_dir), depth=2)
    small = r.numbers["inits"]["N(0, 0.01²)"]
    assert np.asarray(small["image"]).shape == (28, 28) and r.numbers["proper_over_small"][0] > 2


@pytest.mark.parametrize("options, param", [({"image": 5000}, "image"), ({"proper_init": "normal"}, "proper_init"),
                                            ({"init_std": 0}, "init_std"), ({"depth": 0}, "depth")])
def test_bad_options_raise_one_config_error(options, param):
    with pytest.raises(ConfigError) as exc:
        fli.EXPERIMENT(quick=True, **options)
    assert exc.value.param == param

import math

import pytest
import torch

from gradwatch.errors import ConfigError
from gradwatch.nn import init

FAN_OUT, FAN_IN = 300, 500


def _w():
    return torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64)


# Closed-form variance of each initialisation for a (fan_out, fan_in) weight.
EXPECTED_VAR = {
    "normal": 0.01**2,
    "uniform": 0.05**2 / 3,
    "glorot_standard": 1 / (3 * FAN_IN),
    "xavier_uniform": 2 / (FAN_IN + FAN_OUT),
    "xavier_normal": 2 / (FAN_IN + FAN_OUT),
    "he_normal": 2 / FAN_IN,
    "he_uniform": 2 / FAN_IN,
}


@pytest.mark.parametrize("name", list(EXPECTED_VAR))
def test_variance_matches_formula(name):
    g = torch.Generator().manual_seed(0)
    w = init.INITS[name](_w(), generator=g)
    # 150k samples: relative standard error of the sample variance is about sqrt(2/150k) < 0.4 %
    assert w.var().item() == pytest.approx(EXPECTED_VAR[name], rel=0.02)
    assert abs(w.mean().item()) < 4 * math.sqrt(EXPECTED_VAR[name] / w.numel())


def test_he_fan_out_mode_uses_outputs():
    w = init.he_normal(_w(), mode="fan_out", generator=torch.Generator().manual_seed(1))
    assert w.var().item() == pytest.approx(2 / FAN_OUT, rel=0.02)


def test_orthogonal_rows_are_orthonormal():
    w = init.orthogonal(_w(), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(w @ w.T, torch.eye(FAN_OUT, dtype=torch.float64), atol=1e-10, rtol=0)


def test_spectral_init_has_unit_spectral_norm():
    w = init.spectral(_w(), generator=torch.Generator().manual_seed(0))
    assert torch.linalg.svdvals(w)[0].item() == pytest.approx(1.0, abs=1e-12)


def test_same_generator_seed_same_weights():
    a = init.xavier_uniform(_w(), generator=torch.Generator().manual_seed(3))
    b = init.xavier_uniform(_w(), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_unknown_init_lists_choices():
    with pytest.raises(ConfigError, match=r"init='kaiming'.*xavier_uniform.*he_normal"):
        init.get_init("kaiming")


def test_bad_std_is_rejected():
    with pytest.raises(ConfigError, match="init_std"):
        init.normal(_w(), std=-1.0)

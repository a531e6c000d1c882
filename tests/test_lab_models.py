"""Feed-forward knobs, each checked another way: BN folding, dropout expectations, residual equation, sparse
masks, stochastic depth, conv front end, LSUV, spectral init, preprocessing covariances."""

import numpy as np
import pytest
import torch
from torch import nn

from gradwatch.lab import Config, fold_batchnorm
from gradwatch.lab.layers import Residual, SparseLinear, ScaledAtTestDropout
from gradwatch.lab.models import build_model, feedforward, initialize, linear_layers, mlp
from gradwatch.lab.preprocess import Preprocessor


def _net(**kw):
    cfg = Config(**kw)
    return build_model(cfg, 12, 4, image_shape=(3, 4), generator=torch.Generator().manual_seed(0)).double()


@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
def test_bn_folding_equals_unfolded_model(residual):
    torch.manual_seed(0)
    model = _net(norm="batch", sizes=[16, 8], residual=residual, activation="tanh")
    x = torch.randn(64, 12, dtype=torch.float64)
    model.train()
    for _ in range(5):  # give the running statistics non-trivial values
        model(x * 2 + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-1, 1)
    model.eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())
    torch.testing.assert_close(folded(x), model(x), rtol=1e-12, atol=1e-12)


def test_bn_folding_formula_on_one_layer():
    torch.manual_seed(1)
    lin, bn = nn.Linear(3, 2).double(), nn.BatchNorm1d(2).double().eval()
    bn.running_mean.copy_(torch.tensor([0.3, -1.0]))
    bn.running_var.copy_(torch.tensor([4.0, 0.25]))
    bn.weight.data = torch.tensor([2.0, -1.0], dtype=torch.float64)
    bn.bias.data = torch.tensor([0.5, 0.1], dtype=torch.float64)
    x = torch.randn(5, 3, dtype=torch.float64)
    # seed 001: y = γ (Wx + b − E[x]) / √(D[x] + ε) + β, written out by hand
    z = x @ lin.weight.T + lin.bias
    expected = bn.weight * (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) + bn.bias
    folded = fold_batchnorm(nn.Sequential(lin, bn))
    torch.testing.assert_close(folded(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", ["inverted", "seed001"])
def test_dropout_expected_output_equals_test_output(variant):
    p, n = 0.4, 20000
    torch.manual_seed(0)
    drop = nn.Dropout(p) if variant == "inverted" else ScaledAtTestDropout(p)
    x = torch.linspace(0.5, 2.0, 8, dtype=torch.float64)
    drop.train()
    samples = drop(x.expand(n, -1).clone())
    drop.eval()
    test_out = drop(x)
    # E[train output] = test output; the Monte Carlo mean is within 5 standard errors of it
    scale = 1 / (1 - p) if variant == "inverted" else 1.0
    std_err = x * scale * np.sqrt(p * (1 - p)) / np.sqrt(n)
    assert torch.all((samples.mean(0) - test_out).abs() < 5 * std_err)
    # and the test output is the closed form: x for inverted dropout, (1 − p) x for seed 001's
    torch.testing.assert_close(test_out, x if variant == "inverted" else (1 - p) * x)


def test_residual_block_is_z_plus_sigma_of_affine():
    torch.manual_seed(0)
    model = _net(residual=True, sizes=[12, 12], activation="tanh")
    x = torch.randn(7, 12, dtype=torch.float64)
    z = x
    for name in ("block1", "block2"):
        lin = getattr(model, name).branch[0]
        z = z + torch.tanh(z @ lin.weight.T + lin.bias)  # seed 003: z_{j+1} = z_j + σ(W_j z_j + b_j)
    out = model.output
    torch.testing.assert_close(model(x), z @ out.weight.T + out.bias)


def test_residual_projection_when_widths_differ():
    model = _net(residual=True, sizes=[6], activation="relu")
    assert model.block1.proj is not None and model.block1.proj.weight.shape == (6, 12)


def test_stochastic_depth_drops_branch_with_its_probability_and_scales_at_test():
    torch.manual_seed(0)
    branch = nn.Linear(3, 3).double()
    block = Residual(branch, 3, 3, layer_drop=0.3)
    x = torch.randn(2, 3, dtype=torch.float64)
    block.train()
    dropped = sum(torch.equal(block(x), x) for _ in range(4000)) / 4000
    assert abs(dropped - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 4000)
    block.eval()
    torch.testing.assert_close(block(x), x + 0.7 * branch(x))


def test_sparse_linear_keeps_its_pattern_through_training():
    g = torch.Generator().manual_seed(0)
    layer = SparseLinear(20, 10, density=0.25, generator=g)
    assert abs(float(layer.mask.mean()) - 0.25) < 0.1
    layer(torch.randn(4, 20)).sum().backward()
    assert torch.all(layer.weight.grad[layer.mask == 0] == 0)
    x = torch.randn(3, 20)
    torch.testing.assert_close(layer(x), x @ (layer.weight * layer.mask).T + layer.bias)


def test_conv_front_end_shapes_and_pooling():
    model = _net(affine="conv", conv_channels=5, depth=1, width=7)
    assert isinstance(model.front.conv, nn.Conv2d) and isinstance(model.front.pool, nn.AvgPool2d)
    assert model.hidden1.in_features == 5 * 1 * 2  # 3×4 image, 2×2 average pooling → 1×2 per channel
    assert model(torch.randn(2, 12, dtype=torch.float64)).shape == (2, 4)


def test_norm_positions():
    before = _net(norm="layer", depth=1, norm_position="before")
    after = _net(norm="layer", depth=1, norm_position="after")
    assert list(before._modules)[:3] == ["hidden1", "norm1", "act1"]
    assert list(after._modules)[:3] == ["hidden1", "act1", "norm1"]


def test_lsuv_gives_unit_output_variance_per_layer():
    torch.manual_seed(0)
    x = torch.rand(256, 12)
    model = build_model(Config(init="lsuv", activation="tanh", sizes=[30, 30]), 12, 4,
                        generator=torch.Generator().manual_seed(0), data=x)
    outputs = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o.detach()))
             for n, m in linear_layers(model)]
    model(x)
    for h in hooks:
        h.remove()
    for name, out in outputs.items():
        assert abs(float(out.var()) - 1) < 0.1, name


def test_lsuv_without_data_is_a_config_error():
    with pytest.raises(ValueError, match="init='lsuv'.*data"):
        initialize(mlp([4, 3, 2]), "lsuv")


def test_spectral_init_has_unit_spectral_norm():
    model = _net(init="spectral", sizes=[9, 5])
    for _, m in linear_layers(model):
        assert np.linalg.norm(m.weight.detach().numpy(), 2) == pytest.approx(1.0, abs=1e-6)


def test_legacy_mlp_names_unchanged():
    assert [n for n, _ in linear_layers(mlp([5, 4, 4, 3]))] == ["hidden1", "hidden2", "output"]
    cfg = Config(depth=2, width=4)
    assert [n for n, _ in linear_layers(feedforward(cfg, 5, 3))] == ["hidden1", "hidden2", "output"]


@pytest.mark.parametrize("kind", ["pca", "zca"])
def test_whitening_gives_identity_covariance_on_the_training_split(kind):
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6))
    x_train = torch.as_tensor(rng.normal(size=(500, 6)) @ mix + 3.0)
    x_test = torch.as_tensor(rng.normal(size=(100, 6)) @ mix + 3.0)
    pre = Preprocessor(kind).fit(x_train)
    z = pre.transform(x_train).numpy()
    np.testing.assert_allclose(np.cov(z, rowvar=False, bias=True), np.eye(6), atol=1e-9)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-9)
    # fitted on train only: the test split is transformed with the training statistics
    manual = (x_test.numpy() - x_train.numpy().mean(0)) @ pre.matrix.numpy()
    np.testing.assert_allclose(pre.transform(x_test).numpy(), manual, atol=1e-12)
    if kind == "zca":  # ZCA = Cov^(-1/2): symmetric, the inverse square root computed by scipy
        import scipy.linalg

        cov = np.cov(x_train.numpy(), rowvar=False, bias=True)
        np.testing.assert_allclose(pre.matrix.numpy(), np.real(scipy.linalg.inv(scipy.linalg.sqrtm(cov))),
                                   atol=1e-8)


def test_pca_drops_null_directions():
    x = torch.randn(100, 3, dtype=torch.float64)
    x = torch.cat([x, x[:, :1] + x[:, 1:2]], 1)  # rank 3 in 4 dimensions
    z = Preprocessor("pca").fit(x).transform(x)
    assert z.shape == (100, 3)
    np.testing.assert_allclose(np.cov(z.numpy(), rowvar=False, bias=True), np.eye(3), atol=1e-9)


def test_standardize_and_center():
    x = torch.randn(50, 3, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]) + 2
    s = Preprocessor("standardize").fit(x).transform(x)
    np.testing.assert_allclose(s.std(0, correction=0).numpy(), 1, atol=1e-12)
    c = Preprocessor("center").fit(x).transform(x)
    np.testing.assert_allclose(c.numpy(), (x - x.mean(0)).numpy(), atol=1e-12)

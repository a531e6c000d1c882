"""The watch on a CNN, an LSTM and a TransformerEncoder (every statistic), and on a torch.compile'd model."""

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.probe.stats import HIST_EDGES


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class TinyLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 8)
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(1))


CASES = {"cnn": (TinyCNN, (16, 1, 8, 8)), "lstm": (TinyLSTM, (16, 7, 3)), "transformer": (TinyTransformer, (16, 5, 3))}
# (batches of 16: act_dead judges a unit only on at least MIN_DEAD_SAMPLES values)


def _expected_grad_norms(model):
    """‖concatenated .grad‖ for each module that owns parameters, found independently of gradwatch."""
    out = {}
    for name, m in model.named_modules():
        own = [p for p in m.parameters(recurse=False) if p.grad is not None]
        if own:
            out[name] = torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in own])).item()
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_every_statistic_on_cnn_lstm_transformer(case):
    make, shape = CASES[case]
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(*shape), torch.randint(0, 3, (shape[0],))
    with gw.watch(model, opt, stats="full", sample_every=1) as w:
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            expected = _expected_grad_norms(model)
            opt.step()
    h = w.history
    assert h.layers == list(expected)
    np.testing.assert_allclose(h.stat("grad_norm")[-1], list(expected.values()), rtol=1e-5)
    for name in ("grad_abs_mean", "weight_norm", "update_ratio"):
        assert np.isfinite(h.stat(name)).all(), name
    # nn.MultiheadAttention uses out_proj's weights without calling it: no hook fires there, its values are NaN
    called = [not n.endswith("out_proj") for n in h.layers]
    for name in ("act_mean", "act_std", "act_dead"):
        assert np.isfinite(h.stat(name)[:, called]).all(), name
    assert np.isfinite(h.stat("backward_gain")[:, called][:, 1:]).all()  # all after the first pass a gradient back
    assert h.histograms().shape == (2, len(h.layers), len(HIST_EDGES) - 1)
    for m in model.modules():
        assert not m._forward_hooks and not m._backward_hooks
    str(w.diagnose())  # the diagnosis runs on any architecture


def test_cnn_dead_units_are_counted_per_channel():
    torch.manual_seed(0)
    model = TinyCNN()
    with torch.no_grad():
        model.features[1].bias[:2] = -50.0  # channels 0 and 1 of the first BatchNorm are negative everywhere
    model.eval()  # use running stats, so BN's output keeps that bias
    x = torch.randn(6, 1, 8, 8)
    with gw.watch(model, stats=["act_dead"], sample_every=1) as w:
        model(x).sum().backward()
        w.step()
    bn = w.history.layers.index("features.1")
    a = torch.relu(model.features[1](model.features[0](x)))  # independent: ReLU(BN(conv(x))) by hand
    expected = (a == 0).permute(1, 0, 2, 3).reshape(4, -1).all(1).float().mean().item()
    assert w.history.stat("act_dead")[0, bn] == pytest.approx(expected) and expected >= 0.5


def test_hooks_registered_before_compile_work_with_the_compiled_model():
    try:
        import torch._dynamo  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the build
        pytest.skip(f"torch.compile unavailable: {exc}")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    reference = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    reference.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    w = gw.watch(model, opt)  # watch first, then compile (aot_eager: compiled autograd graph, no C++ compiler)
    try:
        compiled = torch.compile(model, backend="aot_eager")
        expected = []
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(compiled(x), y).backward()
            opt.step()
            ref_opt.zero_grad()
            nn.functional.cross_entropy(reference(x), y).backward()
            expected.append(_expected_grad_norms(reference))
            ref_opt.step()
    except Exception as exc:  # pragma: no cover - depends on the build
        w.close()
        pytest.skip(f"torch.compile failed here: {type(exc).__name__}: {exc}")
    w.close()
    assert w.history.layers == ["0", "2"]
    np.testing.assert_allclose(w.history.stat("grad_norm"), [list(e.values()) for e in expected], rtol=1e-5)
    torch._dynamo.reset()

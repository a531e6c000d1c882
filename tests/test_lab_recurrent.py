"""Recurrent nets of seed 002, checked another way: truncated BPTT, ‖∂L/∂h_t‖ against autograd, Pascanu's Ω in
closed form, the ESN reservoir's spectral radius and ridge readout, the synthetic tasks, LSTM vs RNN."""

import numpy as np
import pytest
import torch

from gradwatch import lab
from gradwatch.lab.bptt import recurrent_backward
from gradwatch.lab.penalties import pascanu_regularizer
from gradwatch.lab.recurrent import EchoStateNetwork, RecurrentNet
from gradwatch.lab.tasks import adding, copy_memory, temporal_order
from gradwatch.nn.init import scale_spectral_radius


def _rnn(kind="rnn", per_step=False, n_in=2, sizes=(5,), n_out=1, seed=0):
    torch.manual_seed(seed)
    return RecurrentNet(kind, n_in, list(sizes), n_out, per_step=per_step).double()


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_truncated_bptt_gives_zero_gradient_beyond_k2_steps():
    model = _rnn()
    x, y = torch.randn(4, 12, 2, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64)
    res = recurrent_backward(model, x, y, tbptt=[4, 5], record=True)
    norms = res.time_grads.numpy()
    assert np.all(norms[:12 - 5] == 0) and np.all(norms[12 - 5:] > 0)
    # independently: the state 5 steps before the end as a constant, one ordinary backward
    tbptt_grads = _grads(model)
    model.zero_grad()
    h = torch.zeros(4, 5, dtype=torch.float64)
    with torch.no_grad():
        for t in range(7):
            h = model.cells[0](x[:, t], h)
    for t in range(7, 12):
        h = model.cells[0](x[:, t], h)
    ((model.output(h) - y) ** 2).mean().backward()
    for a, b in zip(tbptt_grads, _grads(model)):
        torch.testing.assert_close(a, b)


def test_full_bptt_time_gradients_equal_autograd():
    model = _rnn(sizes=(5, 3))
    x, y = torch.randn(3, 9, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)
    norms = recurrent_backward(model, x, y, record=True).time_grads
    states = []
    un = model.unroll(x, model.initial_state(3, x), on_first=lambda t, h: states.append(h))
    loss = ((model.head(un.top) - y) ** 2).mean()
    expected = torch.stack([g.norm() for g in torch.autograd.grad(loss, states)])
    torch.testing.assert_close(norms, expected)


def test_truncated_bptt_per_step_blocks_cover_every_loss_once():
    """With k2 = T every block back-propagates to the start, so BPTT(T; k1) equals full BPTT."""
    model = _rnn("gru", per_step=True, n_out=3)
    x, y = torch.randn(2, 8, 2, dtype=torch.float64), torch.randint(0, 3, (2, 8))
    recurrent_backward(model, x, y, loss="cross_entropy", tbptt=[3, 8])
    truncated = _grads(model)
    model.zero_grad()
    recurrent_backward(model, x, y, loss="cross_entropy")
    for a, b in zip(truncated, _grads(model)):
        torch.testing.assert_close(a, b)


def test_pascanu_regulariser_matches_closed_form():
    model = _rnn(sizes=(4,))
    cell = model.cells[0]
    x, y = torch.randn(3, 6, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)
    h = [torch.zeros(3, 4, dtype=torch.float64)]
    pre = []
    for t in range(6):
        a = cell.input(x[:, t]) + cell.recurrent(h[-1])
        pre.append(a)
        h.append(torch.tanh(a))
    loss = ((model.output(h[-1]) - y) ** 2).mean()
    omega, _ = pascanu_regularizer(cell, x, h, loss)
    # Ω = Σ_k (‖g_{k+1} diag(σ'(a_{k+1})) W_rec‖ / ‖g_{k+1}‖ − 1)², g_{k+1} = ∂E/∂x_{k+1}, mean over the batch
    g = torch.autograd.grad(loss, h[1:], retain_graph=True)
    expected = torch.zeros((), dtype=torch.float64)
    for k in range(6):
        for b in range(3):
            gk = g[k][b]
            if gk.norm() > 0:
                v = (gk * (1 - torch.tanh(pre[k][b]) ** 2)) @ cell.recurrent.weight
                expected = expected + (v.norm() / gk.norm() - 1) ** 2
    torch.testing.assert_close(omega, expected / 3)
    omega.backward()  # differentiable with respect to W_rec
    assert cell.recurrent.weight.grad is not None and cell.recurrent.weight.grad.abs().sum() > 0


def test_esn_reservoir_has_spectral_radius_rho_and_ridge_readout():
    g = torch.Generator().manual_seed(0)
    esn = EchoStateNetwork(2, 40, 1, spectral_radius=0.8, generator=g)
    eig = np.linalg.eigvals(esn.w_reservoir.double().numpy())
    assert np.abs(eig).max() == pytest.approx(0.8, rel=1e-5)
    x, y = adding(300, 10, np.random.default_rng(0))
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    esn.fit(x, y, ridge=1e-3)
    from sklearn.linear_model import Ridge

    states = esn.states(x)[:, -1].double().numpy()
    ref = Ridge(alpha=1e-3).fit(states, y.numpy())
    np.testing.assert_allclose(esn.readout.weight.detach().numpy().ravel(), np.ravel(ref.coef_), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(esn.readout.bias.detach().numpy(), np.ravel(ref.intercept_), rtol=1e-3, atol=1e-4)


def test_recurrent_init_scales_w_rec_to_spectral_radius():
    cfg = lab.Config(model="gru", dataset="adding", spectral_radius=0.95, width=6, depth=1)
    from gradwatch.lab.models import build_model

    model = build_model(cfg, 2, 1, generator=torch.Generator().manual_seed(0))
    for w in model.cells[0].weight_hh.detach().chunk(3):  # each gate's H×H block
        assert np.abs(np.linalg.eigvals(w.double().numpy())).max() == pytest.approx(0.95, rel=1e-5)
    w = torch.randn(5, 5)
    scale_spectral_radius(w, 2.0)
    assert np.abs(np.linalg.eigvals(w.double().numpy())).max() == pytest.approx(2.0, rel=1e-5)


def test_adding_problem_targets_follow_the_markers():
    x, y = adding(200, 20, np.random.default_rng(1))
    values, markers = x[..., 0], x[..., 1]
    assert np.all((markers == 1).sum(1) == 2) and np.all(np.abs(values) <= 1)
    marked = np.where(markers == 1, values, 0).sum(1)
    np.testing.assert_allclose(y[:, 0], 0.5 + marked / 4)
    second = np.array([np.flatnonzero(m == 1)[-1] for m in markers])
    assert second.max() < 20 // 2 - 1  # X₂ among the first T/2 − 1 steps


def test_temporal_order_class_is_the_pair_of_relevant_symbols():
    x, y = temporal_order(100, 30, np.random.default_rng(2))
    sym = x.argmax(-1)
    relevant = [s[s >= 4] - 4 for s in sym]
    assert all(len(r) == 2 for r in relevant)
    np.testing.assert_array_equal(y, [2 * r[0] + r[1] for r in relevant])


def test_copy_memory_targets_repeat_the_first_ten_symbols():
    x, y = copy_memory(20, 7, np.random.default_rng(3))
    assert x.shape == (20, 27, 10) and y.shape == (20, 27)
    np.testing.assert_array_equal(y[:, -10:], x[:, :10].argmax(-1))
    assert np.all(y[:, :-10] == 0) and np.all(x[:, 16].argmax(-1) == 9)


def test_lstm_learns_the_adding_problem_where_a_tanh_rnn_does_not():
    """H&S 1997's adding problem at T = 30 (X₂ at least ~15 steps before the end). Predicting the mean gives
    MSE Var[0.5 + (X₁ + X₂)/4] = 2·(1/3)/16 = 1/24; the LSTM must go far below it, the RNN stays near it."""
    torch.set_num_threads(1)
    common = dict(dataset="adding", seq_len=30, width=16, depth=1, n_train=2000, n_test=500, epochs=8,
                  batch_size=50, lr=0.01, clip_norm=1.0, seed=0)
    baseline = 1 / 24
    lstm = lab.train(lab.Config(model="lstm", **common))
    rnn = lab.train(lab.Config(model="rnn", activation="tanh", **common))
    assert lstm.final["test_loss"] < 0.25 * baseline
    assert rnn.final["test_loss"] > 0.75 * baseline
    assert lstm.final["test_accuracy"] > 3 * rnn.final["test_accuracy"]

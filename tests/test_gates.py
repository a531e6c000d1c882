"""Gate saturation of recurrent layers against a hand-unrolled LSTMCell/GRU computation, step by step."""

import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.probe.gates import gate_preactivations, gate_saturation, gate_saturation_by_gate
from gradwatch.probe.stats import SATURATION_LEVEL


def _unrolled_lstm_gates(m: nn.LSTM, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Pre-activations of every gate, from an explicit loop over time with an nn.LSTMCell per layer/direction."""
    d = 2 if m.bidirectional else 1
    seq = x.transpose(0, 1) if m.batch_first else x  # [T, B, F]
    T, B = seq.shape[:2]
    gates = {"input": [], "forget": [], "candidate": [], "output": []}
    inp = seq
    for layer in range(m.num_layers):
        outs = []
        for direction in range(d):
            s = f"_l{layer}" + ("_reverse" if direction else "")
            cell = nn.LSTMCell(inp.shape[-1], m.hidden_size).double()
            with torch.no_grad():
                for name in ("weight_ih", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(m, name + s))
            w_hh, w_hr = getattr(m, "weight_hh" + s), getattr(m, "weight_hr" + s, None)
            h, c = torch.zeros(B, w_hh.shape[1], dtype=x.dtype), torch.zeros(B, m.hidden_size, dtype=x.dtype)
            hs, pre = [None] * T, [None] * T
            for t in (range(T) if direction == 0 else reversed(range(T))):
                p = inp[t] @ cell.weight_ih.T + cell.bias_ih + h @ w_hh.T + cell.bias_hh
                i, f, g, o = p.chunk(4, -1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                h = h @ w_hr.T if w_hr is not None else h
                pre[t], hs[t] = p, h
            for name, chunk in zip(gates, torch.stack(pre).chunk(4, -1)):
                gates[name].append(chunk)
            outs.append(torch.stack(hs))
        inp = torch.cat(outs, -1)
    return gates


def _fraction(gates):
    sig = lambda p: torch.sigmoid(p) * (1 - torch.sigmoid(p)) < SATURATION_LEVEL * 0.25  # noqa: E731
    tanh = lambda p: 1 - torch.tanh(p) ** 2 < SATURATION_LEVEL  # noqa: E731
    hits = sum((tanh if name == "candidate" else sig)(p).sum() for name, ps in gates.items() for p in ps)
    return float(hits) / sum(p.numel() for ps in gates.values() for p in ps)


CONFIGS = [dict(), dict(num_layers=2), dict(num_layers=2, bidirectional=True, batch_first=True),
           dict(proj_size=3, num_layers=2, bidirectional=True)]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "1 layer")
def test_lstm_gate_preactivations_equal_the_unrolled_cell(kwargs):
    torch.manual_seed(0)
    m = nn.LSTM(5, 6, **kwargs).double()
    x = 3 * torch.randn(4, 7, 5, dtype=torch.float64)
    with torch.no_grad():
        out = m(x)
    got = gate_preactivations(m, (x,), out)
    expected = _unrolled_lstm_gates(m, x)
    for name, ps in expected.items():
        for (_, g), e in zip(got[name], ps):
            torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10)
    value = float(gate_saturation(m, (x,), out, SATURATION_LEVEL))
    assert value == pytest.approx(_fraction(expected), rel=1e-6) and 0 < value < 1


def test_watch_records_the_lstm_gate_saturation_as_act_saturation():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 6, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.mul_(4)  # push some gates into saturation
    net = nn.Sequential()  # the LSTM alone; loss on its output
    net.add_module("lstm", lstm)
    x = torch.randn(4, 7, 5, dtype=torch.float64)
    expected = _fraction(_unrolled_lstm_gates(lstm, x))
    with gw.watch(net, stats=["act_saturation"], sample_every=1) as w:
        out, _ = lstm(x)
        out.square().mean().backward()
        w.step()
    assert w.history.stat("act_saturation")[0, 0] == pytest.approx(expected, rel=1e-6) and expected > 0.01


def test_gru_gates_equal_the_written_out_equations():
    torch.manual_seed(0)
    m = nn.GRU(3, 4).double()
    x = 2 * torch.randn(6, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        out = m(x)
    h = torch.zeros(2, 4, dtype=torch.float64)
    r_pre, n_pre = [], []
    for t in range(6):
        gi, gh = x[t] @ m.weight_ih_l0.T + m.bias_ih_l0, h @ m.weight_hh_l0.T + m.bias_hh_l0
        r = gi[:, :4] + gh[:, :4]
        z = torch.sigmoid(gi[:, 4:8] + gh[:, 4:8])
        n = gi[:, 8:] + torch.sigmoid(r) * gh[:, 8:]
        h = (1 - z) * torch.tanh(n) + z * h
        r_pre.append(r), n_pre.append(n)
    got = gate_preactivations(m, (x,), out)
    torch.testing.assert_close(got["reset"][0][1], torch.stack(r_pre).detach())
    torch.testing.assert_close(got["candidate"][0][1], torch.stack(n_pre).detach())
    torch.testing.assert_close(out[0][-1], h.detach())  # the unrolled loop is the module's computation


def test_relu_rnn_has_no_saturating_gate_and_cells_work():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 4, nonlinearity="relu")
    x = 5 * torch.randn(6, 2, 3)
    with torch.no_grad():
        assert float(gate_saturation(rnn, (x,), rnn(x), SATURATION_LEVEL)) == 0.0
        cell = nn.LSTMCell(3, 4)
        xc = 10 * torch.randn(5, 3)
        by_gate = gate_saturation_by_gate(cell, (xc,), cell(xc), SATURATION_LEVEL)
        p = xc @ cell.weight_ih.T + cell.bias_ih + cell.bias_hh  # h0 = 0
        s = torch.sigmoid(p[:, 4:8])
        assert float(by_gate["forget"]) == pytest.approx(float((s * (1 - s) < SATURATION_LEVEL / 4).float().mean()))


def test_packed_sequence_is_not_measured_and_training_goes_on():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4)
    net = nn.Sequential()
    net.add_module("lstm", lstm)
    x = nn.utils.rnn.pack_padded_sequence(torch.randn(5, 2, 3), [5, 3])
    with pytest.warns(RuntimeWarning, match="act_saturation.*lstm.*PackedSequence"):
        with gw.watch(net, stats=["act_saturation"], sample_every=1) as w:
            out, _ = lstm(x)
            out.data.sum().backward()
            w.step()
    assert torch.isnan(torch.tensor(w.history.stat("act_saturation")[0, 0]))

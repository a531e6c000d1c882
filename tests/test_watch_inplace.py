"""stats="full" on models whose layer outputs are modified in place (ResNets with ReLU(inplace=True), `out += x`),
on Hugging Face BERT / GPT-2 and on nn.LSTM: it runs, and the backward gains equal ‖∂L/∂in‖/‖∂L/∂out‖ computed
by torch.autograd.grad on a reference forward pass without in-place ops."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw

N = torch.linalg.vector_norm


class Block(nn.Module):
    """torchvision's BasicBlock: one ReLU(inplace=True) used twice, and `out += identity` on BatchNorm's output."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.relu = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(True)
        self.layer1 = Block(4)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 3)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.fc(self.pool(self.layer1(x)).flatten(1))


def _reference(net, x, y):
    """The same forward without in-place ops; every (module input, module output) pair kept, in call order."""
    calls = []  # (name, input, output)

    def call(name, fn, inp):
        out = fn(inp)
        calls.append((name, inp, out))
        return out

    b = net.layer1
    h = call("bn1", net.bn1, call("conv1", net.conv1, x))
    a = call("relu", torch.relu, h)
    o = call("layer1.bn1", b.bn1, call("layer1.conv1", b.conv1, a))
    o = call("layer1.relu", torch.relu, o)
    o = call("layer1.bn2", b.bn2, call("layer1.conv2", b.conv2, o))
    s = o + a
    o = call("layer1.relu", torch.relu, s)
    logits = call("fc", net.fc, net.pool(o).flatten(1))
    loss = nn.functional.cross_entropy(logits, y)
    outs = [c[2] for c in calls]
    grads_out = torch.autograd.grad(loss, outs, retain_graph=True)
    gains: dict[str, list[float]] = {}
    for (name, inp, out), g_out in zip(calls, grads_out):
        if inp.requires_grad:  # the gradient that flows back through this call only
            (g_in,) = torch.autograd.grad(out, inp, grad_outputs=g_out, retain_graph=True)
            gains.setdefault(name, []).append(float(N(g_in) / N(g_out)))
    return {k: float(np.mean(v)) for k, v in gains.items()}  # a module called twice: the mean of its calls


def test_resnet_with_inplace_relu_runs_under_full_stats_and_gains_equal_autograd():
    torch.manual_seed(0)
    net = ResNet().double()
    x, y = torch.randn(6, 3, 8, 8, dtype=torch.float64), torch.randint(0, 3, (6,))
    expected = _reference(net, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all (no hook failure, nothing about backward hooks)
        with gw.watch(net, stats="full", sample_every=1) as w:
            nn.functional.cross_entropy(net(x), y).backward()
            w.step()
    h = w.history
    assert h.layers == ["conv1", "bn1", "layer1.conv1", "layer1.bn1", "layer1.conv2", "layer1.bn2", "fc"]
    bg, ga = h.stat("backward_gain")[0], h.stat("gain_activation")[0]
    assert np.isnan(bg[0])  # the input image needs no gradient
    for i, name in enumerate(h.layers[1:], start=1):
        assert bg[i] == pytest.approx(expected[name], rel=1e-6), name
    # the ReLU after bn1 (stem) and the block's ReLU (after layer1.bn1, called twice) are in place
    assert ga[1] == pytest.approx(expected["relu"], rel=1e-6)
    assert ga[3] == pytest.approx(expected["layer1.relu"], rel=1e-6)
    assert np.isfinite(h.stat("act_mean")[0]).all()
    # act_dead judges a unit on at least MIN_DEAD_SAMPLES values: the convolutions' channels (batch × pixels)
    assert np.isfinite(h.stat("act_dead")[0][:-1]).all()


def test_resnet_trains_several_steps_with_an_optimizer_and_leaves_no_hook():
    torch.manual_seed(1)
    net = ResNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    with gw.watch(net, opt, stats="full", sample_every=2) as w:
        for step in range(5):
            x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 3, (4,))
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    assert w.history.sampled_steps("backward_gain").tolist() == [0, 2, 4]
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in net.modules())


def test_residual_input_gain_counts_only_the_path_through_the_layer():
    """x feeds both a Linear and a skip connection: the Linear's gain uses ∂L/∂x through the Linear alone."""
    torch.manual_seed(0)
    lin, head = nn.Linear(5, 5).double(), nn.Linear(5, 2).double()
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh()).double()

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.lin, self.head = net, lin, head

        def forward(self, x):
            a = self.body(x)
            return self.head(self.lin(a) + a)

    model = Res()
    x, y = torch.randn(7, 4, dtype=torch.float64), torch.randint(0, 2, (7,))
    a = net(x)
    z = lin(a)
    loss = nn.functional.cross_entropy(head(z + a), y)
    g_z = torch.autograd.grad(loss, z, retain_graph=True)[0]
    (through,) = torch.autograd.grad(z, a, grad_outputs=g_z)
    with gw.watch(model, stats=["backward_gain"], sample_every=1) as w:
        nn.functional.cross_entropy(model(x), y).backward()
        w.step()
    col = w.history.layers.index("lin")
    assert w.history.stat("backward_gain")[0, col] == pytest.approx(float(N(through) / N(g_z)), rel=1e-6)


def test_lstm_full_stats_give_gate_saturation_and_gains():
    torch.manual_seed(0)
    lstm, head = nn.LSTM(3, 6, batch_first=True).double(), nn.Linear(6, 2).double()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = lstm, head

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    net = Net()
    x, y = 3 * torch.randn(5, 9, 3, dtype=torch.float64, requires_grad=True), torch.randint(0, 2, (5,))
    out = lstm(x)[0]
    loss = nn.functional.cross_entropy(head(out[:, -1]), y)
    g_out, g_x = torch.autograd.grad(loss, [out, x])
    with gw.watch(net, stats="full", sample_every=1) as w:
        nn.functional.cross_entropy(net(x), y).backward()
        w.step()
    h = w.history
    assert h.stat("backward_gain")[0, 0] == pytest.approx(float(N(g_x) / N(g_out)), rel=1e-6)
    assert 0 < h.stat("act_saturation")[0, 0] < 1  # the value itself is checked in test_gates.py


def _hf():
    return pytest.importorskip("transformers", reason="needs transformers (pip install 'gradwatch[test]')")


def _captured_gains(model, loss_fn, modules):
    """‖∂L/∂in‖/‖∂L/∂out‖ of each module (its first input and output, through the module only), by
    torch.autograd.grad on tensors captured with plain forward hooks (no gradwatch) in one forward pass."""
    seen = {}

    def keep(name):
        def hook(module, inputs, output):  # returns None: the output is left as it is
            seen.setdefault(name, (inputs[0], output))
        return hook

    handles = [m.register_forward_hook(keep(name)) for name, m in modules.items()]
    loss = loss_fn()
    for h in handles:
        h.remove()
    gains = {}
    for name, (inp, out) in seen.items():
        (g_out,) = torch.autograd.grad(loss, out, retain_graph=True)
        (g_in,) = torch.autograd.grad(out, inp, grad_outputs=g_out, retain_graph=True)
        gains[name] = float(N(g_in) / N(g_out))
    return gains


def test_bert_tiny_random_full_stats_recognise_gelu_and_equal_autograd():
    transformers = _hf()
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=16, num_labels=3,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.BertForSequenceClassification(cfg)
    ids, y = torch.randint(0, 50, (4, 10)), torch.randint(0, 3, (4,))
    inter = model.bert.encoder.layer[1].intermediate
    expected = _captured_gains(model, lambda: model(input_ids=ids, labels=y).loss,
                               {"dense": inter.dense, "gelu": inter.intermediate_act_fn})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with gw.watch(model, opt, stats="full", sample_every=1) as w:
        for _ in range(2):
            opt.zero_grad()
            model(input_ids=ids, labels=y).loss.backward()
            opt.step()
    h = w.history
    cols = [i for i, name in enumerate(h.layers) if name.endswith("intermediate.dense")]
    assert len(cols) == 2 and all(h.activations[i] == "gelu" for i in cols)
    assert h.stat("backward_gain")[0, cols[1]] == pytest.approx(expected["dense"], rel=1e-5)
    assert h.stat("gain_activation")[0, cols[1]] == pytest.approx(expected["gelu"], rel=1e-5)
    assert (h.stat("act_saturation")[:, cols] == 0).all()  # GELU's negative tail is inactive, not saturated
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_gpt2_tiny_random_full_stats_run_recognise_new_gelu_and_equal_autograd():
    transformers = _hf()
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_embd=16, n_layer=2, n_head=2, vocab_size=50, n_positions=16, resid_pdrop=0.0,
                                  embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(cfg)
    ids = torch.randint(0, 50, (3, 8))
    attn = model.transformer.h[1].attn.c_attn
    expected = _captured_gains(model, lambda: model(input_ids=ids, labels=ids).loss, {"c_attn": attn})
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with gw.watch(model, opt, stats="full", sample_every=1) as w:
        for _ in range(2):
            opt.zero_grad()
            model(input_ids=ids, labels=ids).loss.backward()
            opt.step()
    h = w.history
    assert "gelu_tanh" in h.activations  # NewGELUActivation, recognised by class name
    col = h.layers.index("transformer.h.1.attn.c_attn")
    assert h.stat("backward_gain")[0, col] == pytest.approx(expected["c_attn"], rel=1e-5)

"""Saturation of the gates inside recurrent layers (``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` and their ``*Cell``).

Seed 002's vanishing-through-time story is told by the gates: a sigmoid gate whose pre-activation p sits where
σ'(p) ≈ 0 passes no gradient back through time, and neither does a saturated tanh candidate. PyTorch's fused
kernels do not expose the gates, so they are recomputed here, in the layer's forward hook, from the layer's input,
its output (the hidden state of every step) and its weights — one batched matrix product per layer and direction,
no loop over time:

* LSTM (gates i, f, g, o): p = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh; i, f, o are sigmoids, g (the candidate) a
  tanh. GRU (r, z, n): r, z sigmoids, n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn)). RNN: tanh (a ReLU
  RNN has no saturating nonlinearity: its fraction is 0).
* A gate value counts as saturated where σ'(p) < ``level`` · max σ' (max σ' = 1/4 for the sigmoid, 1 for tanh).
* ``num_layers`` ≥ 1, ``batch_first``, bidirectional, ``proj_size`` and unbatched inputs are handled. The hidden
  states of the last layer are the module's output; those of the layers below are recomputed with the fused
  kernel (one more forward pass of those layers, on sampled steps only). With ``dropout`` > 0 in training the
  recomputed inputs of layers ≥ 1 lack the dropout mask, so their gates are those of the network without it.
* Not handled (NaN): ``PackedSequence`` inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_SIGMOID_MAX_DERIV, _TANH_MAX_DERIV = 0.25, 1.0
_KINDS = {nn.LSTM: "lstm", nn.GRU: "gru", nn.LSTMCell: "lstm", nn.GRUCell: "gru"}
_GATE_NAMES = {"lstm": ("input", "forget", "candidate", "output"), "gru": ("reset", "update", "candidate")}


def _not_recurrent(module: nn.Module) -> TypeError:
    return TypeError(f"{type(module).__name__} is not an nn.RNN/LSTM/GRU or their cells")


def _kind(module: nn.Module) -> str:
    if isinstance(module, (nn.RNN, nn.RNNCell)):
        return "rnn_" + module.nonlinearity
    for cls, kind in _KINDS.items():
        if isinstance(module, cls):
            return kind
    raise _not_recurrent(module)


def _gates(
    kind: str, x: Tensor, h_prev: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> dict[str, tuple[str, Tensor]]:
    """{gate: (nonlinearity, pre-activation)} for inputs ``x[..., F]`` and previous hidden states ``h_prev``."""
    gi = x @ w_ih.T + (b_ih if b_ih is not None else 0)  # [..., gates·H]
    gh = h_prev @ w_hh.T + (b_hh if b_hh is not None else 0)  # [..., gates·H]
    if kind == "lstm":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        return {"input": ("sigmoid", i), "forget": ("sigmoid", f), "candidate": ("tanh", g), "output": ("sigmoid", o)}
    if kind == "gru":
        (ir, iz, in_), (hr, hz, hn) = gi.chunk(3, dim=-1), gh.chunk(3, dim=-1)
        r = ir + hr
        return {
            "reset": ("sigmoid", r),
            "update": ("sigmoid", iz + hz),
            "candidate": ("tanh", in_ + torch.sigmoid(r) * hn),
        }
    return {"hidden": ("relu" if kind == "rnn_relu" else "tanh", gi + gh)}


def _saturated(nonlinearity: str, p: Tensor, level: float) -> Tensor:
    """Boolean mask of σ'(p) < level · max σ' (never true for ReLU: its zero half is inactive, not saturated)."""
    p = p if p.dtype == torch.float64 else p.float()
    if nonlinearity == "sigmoid":
        s = torch.sigmoid(p)
        return s * (1 - s) < level * _SIGMOID_MAX_DERIV
    if nonlinearity == "tanh":
        return 1 - torch.tanh(p) ** 2 < level * _TANH_MAX_DERIV
    return torch.zeros_like(p, dtype=torch.bool)


def _param(module: nn.Module, name: str) -> Tensor | None:
    p = getattr(module, name, None)
    return p.detach() if p is not None else None


def _weight(module: nn.Module, name: str) -> Tensor:
    w = getattr(module, name)
    if not isinstance(w, Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is a {type(w).__name__}, expected a weight tensor")
    return w.detach()


def _cell_gates(module: nn.RNNCellBase, kind: str, inputs: tuple) -> dict[str, tuple[str, Tensor]]:
    x = inputs[0]
    hx = inputs[1] if len(inputs) > 1 else None
    h = hx[0] if isinstance(hx, (tuple, list)) else hx
    if h is None:
        h = x.new_zeros(*x.shape[:-1], module.hidden_size)
    return _gates(
        kind,
        x,
        h,
        _weight(module, "weight_ih"),
        _weight(module, "weight_hh"),
        _param(module, "bias_ih"),
        _param(module, "bias_hh"),
    )


def _layer_params(module: nn.RNNBase, layer: int) -> list[Tensor]:
    per_layer = len(module._flat_weights) // module.num_layers
    params = []
    for w in module._flat_weights[layer * per_layer : (layer + 1) * per_layer]:
        if w is None:
            raise ValueError(
                f"{type(module).__name__} layer {layer} lacks one of its weights {module._flat_weights_names}"
            )
        params.append(w.detach())
    return params


def _run_layer(module: nn.RNNBase, kind: str, x: Tensor, hx, layer: int) -> Tensor:
    """The output sequence ``[T, B, D·H_out]`` of layer ``layer`` alone (fused kernel, no dropout)."""
    d = 2 if module.bidirectional else 1
    params = _layer_params(module, layer)
    if kind == "lstm":
        out, *_ = torch.lstm(
            x,
            [hx[0][layer * d : (layer + 1) * d], hx[1][layer * d : (layer + 1) * d]],
            params,
            module.bias,
            1,
            0.0,
            False,
            module.bidirectional,
            False,
        )
    else:
        fn = {"gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}[kind]
        out, _ = fn(x, hx[layer * d : (layer + 1) * d], params, module.bias, 1, 0.0, False, module.bidirectional, False)
    return out


def _sequence_gates(module: nn.RNNBase, kind: str, inputs: tuple, output) -> dict[str, list[tuple[str, Tensor]]]:
    x = inputs[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise NotImplementedError("gate saturation of a PackedSequence input is not measured")
    out = output[0]
    hx = inputs[1] if len(inputs) > 1 else None
    unbatched = x.dim() == 2
    if unbatched:  # [T, F] -> [T, 1, F]; hx [L·D, H] -> [L·D, 1, H]
        x, out = x.unsqueeze(1), out.unsqueeze(1)
        hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1) if hx is not None else None
    elif module.batch_first:
        x, out = x.transpose(0, 1), out.transpose(0, 1)  # [T, B, ·]
    d = 2 if module.bidirectional else 1
    h_out = module.proj_size if getattr(module, "proj_size", 0) else module.hidden_size
    batch = x.shape[1]
    if hx is None:
        zeros = x.new_zeros(module.num_layers * d, batch, h_out)
        hx = (zeros, x.new_zeros(module.num_layers * d, batch, module.hidden_size)) if kind == "lstm" else zeros
    h0 = hx[0] if kind == "lstm" else hx  # [L·D, B, H_out]
    gates: dict[str, list[tuple[str, Tensor]]] = {}
    layer_in = x
    for layer in range(module.num_layers):
        layer_out = out if layer == module.num_layers - 1 else _run_layer(module, kind, layer_in, hx, layer)
        for direction in range(d):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            h = layer_out[..., direction * h_out : (direction + 1) * h_out]  # [T, B, H_out]
            first = h0[layer * d + direction].unsqueeze(0)  # [1, B, H_out]
            h_prev = torch.cat([first, h[:-1]]) if direction == 0 else torch.cat([h[1:], first])
            found = _gates(
                kind,
                layer_in,
                h_prev,
                _weight(module, "weight_ih" + sfx),
                _weight(module, "weight_hh" + sfx),
                _param(module, "bias_ih" + sfx),
                _param(module, "bias_hh" + sfx),
            )
            for name, pair in found.items():
                gates.setdefault(name, []).append(pair)
        layer_in = layer_out
    return gates


@torch.no_grad()
def gate_preactivations(module: nn.Module, inputs: tuple, output) -> dict[str, list[tuple[str, Tensor]]]:
    """{gate name: [(nonlinearity, pre-activation) per layer and direction]} of one forward call of ``module``
    (``inputs`` and ``output`` as a forward hook receives them)."""
    kind = _kind(module)
    if isinstance(module, nn.RNNCellBase):
        return {name: [pair] for name, pair in _cell_gates(module, kind, inputs).items()}
    if isinstance(module, nn.RNNBase):
        return _sequence_gates(module, kind, inputs, output if isinstance(output, tuple) else (output,))
    raise _not_recurrent(module)


@torch.no_grad()
def gate_saturation_by_gate(module: nn.Module, inputs: tuple, output, level: float) -> dict[str, Tensor]:
    """{gate name: fraction (0-d tensor) of its values (steps × batch × units, all layers and directions) with
    σ'(p) < level · max σ'}."""
    result = {}
    for name, pairs in gate_preactivations(module, inputs, output).items():
        hits = torch.stack([_saturated(nl, p, level).sum() for nl, p in pairs]).sum()
        result[name] = hits.float() / sum(p.numel() for _, p in pairs)
    return result


@torch.no_grad()
def gate_saturation(module: nn.Module, inputs: tuple, output, level: float) -> Tensor:
    """The fraction (0-d tensor) of all gate values of one forward call (every gate, step, example, unit, layer
    and direction) with σ'(p) < level · max σ' — the recurrent layer's ``act_saturation``."""
    hits: Tensor | int = 0
    total = 0
    for pairs in gate_preactivations(module, inputs, output).values():
        for nl, p in pairs:
            hits = hits + _saturated(nl, p, level).sum()
            total += p.numel()
    return torch.as_tensor(hits).float() / total

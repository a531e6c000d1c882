"""Recurrent nets of seed 002, unrolled step by step so every hidden state h_t is a tensor one can watch.

- :class:`RNNCell`: the vanilla cell h_t = σ(W_in x_t + W_rec h_{t−1} + b) with any activation (tanh, sigmoid,
  relu, …) — its two matrices are separate layers (``input``, ``recurrent``), W_rec being the one of
  Pascanu et al.'s product ∂x_t/∂x_k = Π W_recᵀ diag(σ'(x_{i−1})).
- :class:`RecurrentNet`: stacked RNN / LSTM / GRU cells and a linear ``output`` read at the last step
  (many-to-one) or at every step (many-to-many); :meth:`RecurrentNet.unroll` runs any span of steps from a
  given state, which is what truncated BPTT needs.
- :class:`EchoStateNetwork`: a fixed random reservoir scaled to spectral radius ρ and a ridge-regression
  readout (Jaeger 2001) — no gradient flows through time at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import get_activation
from gradwatch.nn.init import scale_spectral_radius

State = Tensor | tuple[Tensor, Tensor]


class RNNCell(nn.Module):
    """h' = σ(W_in x + W_rec h + b)."""

    def __init__(self, n_in: int, n_hidden: int, activation: str = "tanh", alpha: float | None = None):
        super().__init__()
        self.hidden_size = n_hidden
        self.input = nn.Linear(n_in, n_hidden)
        self.recurrent = nn.Linear(n_hidden, n_hidden, bias=False)
        self.act = get_activation(activation).make(alpha)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return self.act(self.input(x) + self.recurrent(h))


def _hidden(state: State) -> Tensor:
    return state[0] if isinstance(state, tuple) else state


def _detach(state: State) -> State:
    return (state[0].detach(), state[1].detach()) if isinstance(state, tuple) else state.detach()


@dataclass
class Unrolled:
    """What :meth:`RecurrentNet.unroll` returns: per-step top-layer outputs, first-layer states, final state."""

    top: list[Tensor]  # [T'] × [B, H_top]
    first: list[Tensor]  # [T'] × [B, H_1]: h_t of the first layer (where ∂L/∂h_t is recorded)
    states: list[State]  # one per layer, after the last step


class RecurrentNet(nn.Module):
    """Stacked recurrent cells (``cells.0`` … input side first) and a linear ``output`` layer."""

    def __init__(
        self,
        kind: str,
        n_in: int,
        sizes: list[int],
        n_out: int,
        *,
        per_step: bool = False,
        activation: str = "tanh",
        alpha: float | None = None,
    ):
        super().__init__()
        makers: dict[str, Callable[[int, int], nn.Module]] = {
            "rnn": lambda i, h: RNNCell(i, h, activation, alpha),
            "lstm": nn.LSTMCell,
            "gru": nn.GRUCell,
        }
        if kind not in makers:
            raise ConfigError("model", kind, "expected one of " + ", ".join(makers))
        self.kind, self.per_step = kind, per_step
        self.hidden_sizes = list(sizes)
        widths = [n_in] + self.hidden_sizes
        self.cells = nn.ModuleList(makers[kind](a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output = nn.Linear(widths[-1], n_out)

    def initial_state(self, batch: int, like: Tensor) -> list[State]:
        zeros = [like.new_zeros(batch, h) for h in self.hidden_sizes]
        return [(z, z.clone()) if self.kind == "lstm" else z for z in zeros]

    def unroll(
        self,
        x: Tensor,
        states: list[State],
        start: int = 0,
        stop: int | None = None,
        on_first: Callable[[int, Tensor], None] | None = None,
    ) -> Unrolled:
        """Run steps ``start … stop−1`` of ``x`` [B, T, n_in] from ``states``; ``on_first(t, h_t)`` sees each
        first-layer state (to register a gradient hook on it)."""
        stop = x.shape[1] if stop is None else stop
        states = list(states)
        top, first = [], []
        for t in range(start, stop):
            inp = x[:, t]
            for i, cell in enumerate(self.cells):
                states[i] = cell(inp, states[i])
                inp = _hidden(states[i])
                if i == 0:
                    first.append(inp)
                    if on_first is not None:
                        on_first(t, inp)
            top.append(inp)
        return Unrolled(top, first, states)

    def head(self, top: list[Tensor]) -> Tensor:
        """The output layer on the last step ([B, n_out]) or on every step ([B, T, n_out])."""
        if self.per_step:
            return self.output(torch.stack(top, dim=1))
        return self.output(top[-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.unroll(x, self.initial_state(x.shape[0], x)).top)


def detach_states(states: list[State]) -> list[State]:
    return [_detach(s) for s in states]


class EchoStateNetwork(nn.Module):
    """Jaeger's echo state network: h_t = σ(W_in x_t + W h_{t−1}), W fixed with spectral radius ρ, and a linear
    ``readout`` fitted by ridge regression on the states (the last one, or every one when ``per_step``)."""

    w_reservoir: Tensor  # buffer [N, N]
    w_in: Tensor  # buffer [N, n_in]

    def __init__(
        self,
        n_in: int,
        n_reservoir: int,
        n_out: int,
        *,
        spectral_radius: float = 0.95,
        input_scale: float = 1.0,
        density: float = 1.0,
        activation: str = "tanh",
        alpha: float | None = None,
        per_step: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        w = torch.randn(n_reservoir, n_reservoir, generator=generator, dtype=torch.float64)
        if density < 1:
            w *= torch.rand(n_reservoir, n_reservoir, generator=generator, dtype=torch.float64) < density
        scale_spectral_radius(w, spectral_radius)
        w_in = torch.empty(n_reservoir, n_in, dtype=torch.float64).uniform_(
            -input_scale, input_scale, generator=generator
        )
        self.register_buffer("w_reservoir", w.float())
        self.register_buffer("w_in", w_in.float())
        self.act = get_activation(activation).make(alpha)
        self.readout = nn.Linear(n_reservoir, n_out)
        self.per_step = per_step

    @torch.no_grad()
    def states(self, x: Tensor) -> Tensor:
        """Reservoir states [B, T, N] for inputs [B, T, n_in]."""
        h = x.new_zeros(x.shape[0], self.w_reservoir.shape[0])
        out = []
        for t in range(x.shape[1]):
            h = self.act(x[:, t] @ self.w_in.T + h @ self.w_reservoir.T)
            out.append(h)
        return torch.stack(out, dim=1)

    def _features(self, x: Tensor) -> Tensor:
        s = self.states(x)
        return s if self.per_step else s[:, -1]

    @torch.no_grad()
    def fit(self, x: Tensor, y: Tensor, ridge: float) -> EchoStateNetwork:
        """Least squares readout with penalty ``ridge``·‖W_out‖² (bias unpenalised), solved in float64."""
        s = self._features(x).reshape(-1, self.readout.in_features).double()
        y = y.reshape(s.shape[0], -1).double()
        s_mean, y_mean = s.mean(0), y.mean(0)
        sc, yc = s - s_mean, y - y_mean
        gram = sc.T @ sc + ridge * torch.eye(s.shape[1], dtype=torch.float64)
        w = torch.linalg.lstsq(gram, sc.T @ yc).solution.T  # [n_out, N]
        self.readout.weight.copy_(w.float())
        self.readout.bias.copy_((y_mean - w @ s_mean).float())
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self._features(x))

"""Seed 003's backpropagation, written out: forward pass, backward pass, weight and bias Jacobians.

The model (seed 003, "Deep learning – Model")::

    m(x; θ) = W_n σ_{n−1}(W_{n−1} σ_{n−2}(⋯ (W_2 σ_1(W_1 x + b_1) + b_2) ⋯) + b_{n−1}) + b_n

with states z_1 = x, v_j = W_j z_j + b_j, z_{j+1} = σ_j(v_j) for j = 1 … n and σ_n = Id.

Backpropagation summarized (seed 003)::

    1. forward:  z_{j+1} = σ_j(W_j z_j + b_j)                  (store every z_j and v_j)
    2. backward: δ_j = W_jᵀ (δ_{j+1} ⊙ σ'_j(v_j)),  δ_{n+1} = ∂L/∂z_{n+1}
    3. ∂L/∂W_j = (δ_{j+1} ⊙ σ'_j(v_j)) z_jᵀ,  ∂L/∂b_j = δ_{j+1} ⊙ σ'_j(v_j)

Three variants from the seeds, each off by default:

- residual (seed 003): z_{j+1} = z_j + σ_j(W_j z_j + b_j) on every hidden layer whose input and output widths
  agree, so the backward pass gains the identity path: δ_j = δ_{j+1} + W_jᵀ(δ_{j+1} ⊙ σ'_j(v_j));
- batch norm (seed 001): σ_j is applied to u_j = BN(v_j) instead of v_j on hidden layers, and the backward pass
  goes through :func:`~gradwatch.reference.batchnorm.batchnorm_backward`;
- dropout (seeds 001, 003): in training a hidden unit's output is kept with probability ρ (mask m_j ∈ {0, 1}),
  at prediction time it is scaled by ρ ("use scaled ρσ in prediction").

Lists are indexed as in the slides: ``W[j]``, ``z[j]``, ``delta[j]`` with j from 1 (index 0 is unused).
Samples are columns: z_j has shape ``(n_j, m)``; gradients are summed over the m samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import numpy_activation
from gradwatch.reference import batchnorm as bn
from gradwatch.reference.losses import LOSSES

OneBased = list[Any]  # indexed from 1 as in the slides: entry 0 (and a layer's missing mask or cache) is None


@dataclass
class Network:
    """The parameters θ = {(W_j, b_j)} (0-based lists of length n) and the network's wiring.

    ``gammas``/``betas`` (one per hidden layer) and the running statistics are used when ``batchnorm`` is on;
    :meth:`random` fills them in.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str = "sigmoid"
    residual: bool = False
    batchnorm: bool = False
    dropout_keep: float = 1.0
    gammas: list[np.ndarray] = field(default_factory=list)
    betas: list[np.ndarray] = field(default_factory=list)
    running_means: list[np.ndarray] = field(default_factory=list)
    running_vars: list[np.ndarray] = field(default_factory=list)
    bn_eps: float = bn.DEFAULT_EPS

    def __post_init__(self) -> None:
        if len(self.weights) == 0:
            raise ConfigError("weights", [], "expected at least one weight matrix W_1 … W_n")
        if len(self.biases) != len(self.weights):
            raise ConfigError(
                "biases", f"{len(self.biases)} vectors", f"expected one bias per weight matrix ({len(self.weights)})"
            )
        self.weights = [np.asarray(w, dtype=float) for w in self.weights]
        self.biases = [np.asarray(b, dtype=float).reshape(-1) for b in self.biases]
        for j, (w, b) in enumerate(zip(self.weights, self.biases), start=1):
            if w.ndim != 2:
                raise ConfigError(f"weights[{j}]", w.shape, "W_j must be a matrix of shape (n_{j+1}, n_j)")
            if j > 1 and w.shape[1] != self.weights[j - 2].shape[0]:
                raise ConfigError(
                    f"weights[{j}]",
                    w.shape,
                    f"W_{j} must have {self.weights[j - 2].shape[0]} columns (the rows of W_{j - 1})",
                )
            if b.shape != (w.shape[0],):
                raise ConfigError(f"biases[{j}]", b.shape, f"b_{j} must have {w.shape[0]} entries")
        numpy_activation(self.activation)  # unknown names fail here, listing the known ones
        if not 0 < self.dropout_keep <= 1:
            raise ConfigError("dropout_keep", self.dropout_keep, "the keep probability ρ must be in (0, 1]")
        if self.batchnorm:
            hidden = [w.shape[0] for w in self.weights[:-1]]
            self.gammas = self.gammas or [np.ones(n) for n in hidden]
            self.betas = self.betas or [np.zeros(n) for n in hidden]
            self.running_means = self.running_means or [np.zeros(n) for n in hidden]
            self.running_vars = self.running_vars or [np.ones(n) for n in hidden]
            if [g.size for g in self.gammas] != hidden or [b.size for b in self.betas] != hidden:
                raise ConfigError(
                    "gammas",
                    [g.size for g in self.gammas],
                    f"expected one γ and one β per hidden unit, layer sizes {hidden}",
                )

    @classmethod
    def random(cls, sizes: list[int], activation: str = "sigmoid", *, seed: int = 0, **wiring) -> Network:
        """W_j ~ N(0, 1/n_j) and b_j ~ N(0, 0.1²) for ``sizes = [n_1, …, n_{n+1}]``; γ, β random near 1, 0."""
        if len(sizes) < 2 or any(int(s) != s or s < 1 for s in sizes):
            raise ConfigError("sizes", sizes, "expected at least two positive integers [inputs, ..., outputs]")
        rng = np.random.default_rng(seed)
        weights = [rng.normal(0, 1 / np.sqrt(a), size=(b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
        biases = [rng.normal(0, 0.1, size=b) for b in sizes[1:]]
        hidden = sizes[1:-1]
        if wiring.get("batchnorm"):
            wiring.setdefault("gammas", [rng.uniform(0.5, 1.5, n) for n in hidden])
            wiring.setdefault("betas", [rng.normal(0, 0.1, n) for n in hidden])
        return cls(weights, biases, activation, **wiring)

    @property
    def n(self) -> int:
        """Number of affine layers n (the last one, σ_n = Id, is the output)."""
        return len(self.weights)

    def residual_at(self, j: int) -> bool:
        """Does layer j (1-based) carry a skip connection z_{j+1} = z_j + σ_j(…)?"""
        w = self.weights[j - 1]
        return self.residual and j < self.n and w.shape[0] == w.shape[1]


@dataclass
class ForwardPass:
    """Everything the backward pass needs, indexed from 1 like the slides."""

    z: OneBased  # z[1] = x, …, z[n+1] = m(x; θ)                         (n_j, m)
    v: OneBased  # v[j] = W_j z_j + b_j                                   (n_{j+1}, m)
    u: OneBased  # u[j] = BN(v_j) with batch norm, else v_j: σ_j's input   (n_{j+1}, m)
    masks: OneBased  # masks[j]: dropout mask of hidden layer j, or None
    bn_caches: OneBased  # bn_caches[j]: what batchnorm_backward needs, or None

    @property
    def output(self) -> np.ndarray:
        return self.z[-1]


@dataclass
class Gradients:
    """∂L/∂W_j, ∂L/∂b_j (0-based lists like :class:`Network`'s), ∂L/∂γ_j, ∂L/∂β_j and δ_1 … δ_{n+1}."""

    weights: list
    biases: list
    gammas: list
    betas: list
    delta: OneBased  # delta[j] = ∂L/∂z_j (transposed), j = 1 … n+1; delta[0] unused


def forward(
    net: Network, x: np.ndarray, *, train: bool = True, masks: list | None = None, seed: int | None = None
) -> ForwardPass:
    """Seed 003's forward pass z_{j+1} = σ_j(W_j z_j + b_j), storing z_j and v_j.

    ``x`` holds one sample per column, shape ``(n_1, m)`` (a 1-D ``x`` is one sample). With ``train=False``
    batch norm uses the running statistics and dropout scales by ρ instead of masking. Dropout masks are drawn
    from ``seed`` unless given as ``masks[j]`` (1-based, hidden layers).
    """
    x = np.asarray(x, dtype=float)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    if x.shape[0] != net.weights[0].shape[1]:
        raise ConfigError("x.shape", x.shape, f"expected {net.weights[0].shape[1]} rows (one sample per column)")
    act = numpy_activation(net.activation)
    W: OneBased = [None, *net.weights]
    b: OneBased = [None, *net.biases]
    rng = np.random.default_rng(seed)
    n = net.n
    z: OneBased = [None, x]
    v: OneBased = [None]
    u: OneBased = [None]
    drop: OneBased = [None] * (n + 1)
    caches: OneBased = [None] * (n + 1)
    for j in range(1, n + 1):
        v.append(W[j] @ z[j] + b[j][:, None])  # v_j = W_j z_j + b_j
        if j == n:  # σ_n = Id: the output layer
            u.append(v[j])
            z.append(v[j])
            break
        u.append(_normalise(net, j, v[j], train, caches))  # BN(v_j), or v_j
        h = act.fn(u[j])  # σ_j(·)
        if net.dropout_keep < 1:
            if train:
                drop[j] = masks[j] if masks is not None else (rng.random(h.shape) < net.dropout_keep) * 1.0
                h = drop[j] * h  # drop units with prob. 1 − ρ
            else:
                h = net.dropout_keep * h  # predict with ρσ
        z.append(z[j] + h if net.residual_at(j) else h)  # z_{j+1}
    return ForwardPass(z, v, u, drop, caches)


def _normalise(net: Network, j: int, v: np.ndarray, train: bool, caches: list) -> np.ndarray:
    if not net.batchnorm:
        return v
    gamma, beta = net.gammas[j - 1], net.betas[j - 1]
    if not train:
        return bn.batchnorm_inference(v, gamma, beta, net.running_means[j - 1], net.running_vars[j - 1], net.bn_eps)
    out, caches[j] = bn.batchnorm_forward(v, gamma, beta, net.bn_eps)
    return out


def backward(net: Network, fp: ForwardPass, delta_out: np.ndarray) -> Gradients:
    """Seed 003's backward pass from δ_{n+1} = ∂L/∂z_{n+1} (shape of the output).

    For each layer j = n … 1, with g_j = δ_{j+1} ⊙ σ'_j(v_j) (for the plain network):
    ∂L/∂W_j = g_j z_jᵀ, ∂L/∂b_j = g_j (summed over samples), δ_j = W_jᵀ g_j (+ δ_{j+1} on a skip connection).
    """
    act = numpy_activation(net.activation)
    n = net.n
    W: OneBased = [None, *net.weights]
    delta: OneBased = [None] * (n + 2)
    delta[n + 1] = np.asarray(delta_out, dtype=float).reshape(fp.output.shape)
    dW: list[np.ndarray | None] = [None] * n  # filled from the output side, all set at the end
    db: list[np.ndarray | None] = [None] * n
    dgamma: list[np.ndarray | None] = [None] * (n - 1)
    dbeta: list[np.ndarray | None] = [None] * (n - 1)
    for j in range(n, 0, -1):
        if j == n:
            g = delta[n + 1]  # σ_n = Id: σ'_n = 1
        else:
            through = delta[j + 1] if fp.masks[j] is None else delta[j + 1] * fp.masks[j]
            g = through * act.deriv(fp.u[j])  # δ_{j+1} ⊙ σ'_j(v_j)
            if net.batchnorm:  # ∂ℓ/∂y → ∂ℓ/∂x through BN
                g, dgamma[j - 1], dbeta[j - 1] = bn.batchnorm_backward(g, fp.bn_caches[j])
        dW[j - 1] = g @ fp.z[j].T  # (δ_{j+1} ⊙ σ'_j(v_j)) z_jᵀ
        db[j - 1] = g.sum(axis=1)  # (δ_{j+1} ⊙ σ'_j(v_j))ᵀ
        delta[j] = W[j].T @ g  # δ_j = W_jᵀ(δ_{j+1} ⊙ σ'_j(v_j))
        if net.residual_at(j):
            delta[j] = delta[j] + delta[j + 1]  # the skip connection's identity
    return Gradients(dW, db, dgamma if net.batchnorm else [], dbeta if net.batchnorm else [], delta)


def loss_and_gradients(
    net: Network,
    x: np.ndarray,
    y: np.ndarray,
    loss: str = "squared_error",
    *,
    masks: list | None = None,
    seed: int | None = None,
) -> tuple[float, Gradients, ForwardPass]:
    """Forward pass, loss L(z_{n+1}, y) summed over the batch, and the backward pass: (L, gradients, states)."""
    if loss not in LOSSES:
        raise ConfigError("loss", loss, "expected one of " + ", ".join(LOSSES))
    fp = forward(net, x, masks=masks, seed=seed)
    value, delta_out = LOSSES[loss](fp.output, np.asarray(y, dtype=float).reshape(fp.output.shape))
    return value, backward(net, fp, delta_out), fp

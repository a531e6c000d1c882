"""The remedies the seeds list, each with where it comes from, and their ranking for each kind of finding.

Seed 000 (after Nielsen ch. 5) lists for the unstable gradient: a. a better activation, b. batch normalisation,
c. weight initialisation, d. skip connections, e. gradient clipping, f. layer-wise pretraining. Seed 002 (RNNs):
for exploding gradients truncated BPTT, penalties, gradient clipping; for vanishing ones weight initialisation,
echo state networks, LSTM. Seed 001: Xavier/He derivations, batch norm, input preprocessing. Seed 003: residual
networks, weight constraints ‖W‖₂ ≤ 1 with 1-Lipschitz σ. Seed 004: ReLU / dying ReLU / LeakyReLU, PReLU, ELU,
SELU; L2 = weight decay. A remedy that no seed states says so in its ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Remedy:
    key: str
    title: str
    detail: str
    source: str  # the seed (file prefix and slide) it comes from

    def __str__(self) -> str:
        return f"{self.title} — {self.detail} [{self.source}]"


CATALOGUE: dict[str, Remedy] = {r.key: r for r in [
    Remedy("activation", "Use a non-saturating activation (ReLU, LeakyReLU, ELU, SELU)",
           "σ' of the sigmoid is at most 1/4, so every layer shrinks the gradient; ReLU's derivative is 1 where active",
           "seed 000 remedy a; seed 004 (ReLU, LeakyReLU, ELU, SELU)"),
    Remedy("init", "Initialise for the activation: He for ReLU, Xavier/Glorot for tanh/sigmoid, or LSUV",
           "choose Var(w) so each layer keeps the variance of activations and gradients (gain ≈ 1 per layer)",
           "seed 000 remedy c; seed 001 (Xavier and He derivations); seed 002 (weight initialisation); "
           "LSUV: Mishkin & Matas 2016, not in the seeds"),
    Remedy("batchnorm", "Add batch normalisation before the activation",
           "keeps each layer's pre-activations near zero mean, unit variance, out of the saturated range",
           "seed 000 remedy b; seed 001 (batch normalisation, its results on sigmoid inputs)"),
    Remedy("residual", "Add residual (skip) connections",
           "an identity path lets the gradient reach early layers without passing every layer's Jacobian",
           "seed 000 remedy d; seed 003 (residual networks)"),
    Remedy("clipping", "Clip the gradient norm (torch.nn.utils.clip_grad_norm_)",
           "rescale g to threshold·g/‖g‖ when ‖g‖ exceeds the threshold",
           "seed 000 remedy e; seed 002 (gradient clipping)"),
    Remedy("constraints", "Constrain the weights (‖W‖₂ ≤ 1, e.g. spectral normalisation)",
           "with a 1-Lipschitz activation the backward pass then cannot grow: ‖δ_j‖ ≤ ‖δ_{j+1}‖",
           "seed 003 (weight constraints)"),
    Remedy("penalties", "Penalise large weights (L2 / weight decay)",
           "keeps weights, and so the per-layer gain, from growing",
           "seed 002 (penalties); seed 004 (L2 = weight decay)"),
    Remedy("pretraining", "Layer-wise pretraining",
           "train layers one at a time so early layers start from useful weights",
           "seed 000 remedy f"),
    Remedy("lower_lr", "Lower the learning rate",
           "large steps push units into saturation or kill ReLUs and let weights grow until gradients overflow",
           "not stated in the seeds (general practice; dying ReLUs after large updates: seed 004)"),
    Remedy("leaky", "Use LeakyReLU / PReLU / ELU instead of ReLU",
           "a small negative slope keeps a gradient flowing through units whose input is negative",
           "seed 004 (dying ReLU, LeakyReLU, PReLU, ELU)"),
    Remedy("preprocess", "Centre and scale the inputs (zero mean, unit variance)",
           "inputs far from zero push the first layer's units into saturation",
           "seed 001 (preprocessing: centring, decorrelation, whitening)"),
    Remedy("check_data", "Look for inf/NaN in the inputs and the loss (log 0, division by 0)",
           "a non-finite value in the forward pass makes every gradient non-finite",
           "not stated in the seeds (general practice)"),
    Remedy("lstm", "Use LSTM or GRU cells instead of a plain RNN",
           "their additive cell state carries the gradient across many time steps",
           "seed 002 (LSTM)"),
    Remedy("tbptt", "Truncated backpropagation through time",
           "stop backpropagating after k steps so products of many Jacobians never form",
           "seed 002 (truncated backpropagation)"),
    Remedy("esn", "Echo state network (fixed random reservoir, train the readout only)",
           "no gradient has to pass through the recurrence", "seed 002 (echo state networks)"),
    Remedy("recurrent_init", "Initialise W_rec with spectral radius ≈ 1 (orthogonal or scaled identity)",
           "Pascanu: ∂x_t/∂x_k is a product of W_recᵀ diag(σ'); its norm grows or decays like ρ(W_rec)^(t−k)",
           "seed 002 (weight initialisation; small / large W_rec)"),
]}


def ranked(kind: str, *, recurrent: bool = False, activation_limited: bool | None = None,
           saturating: bool = False) -> list[Remedy]:
    """The remedies for a finding of ``kind``, most relevant first.

    ``activation_limited`` (vanishing): True when the activation-derivative part of the backward gain is the
    smaller factor (change the activation first), False when the weight part is (change the initialisation
    first), None when unknown. ``saturating``: the layers use a saturating activation (sigmoid, tanh).
    """
    if kind == "vanishing":
        if recurrent:
            keys = ["lstm", "recurrent_init", "esn", "tbptt", "residual"]
        else:
            act_first = activation_limited if activation_limited is not None else saturating
            keys = (["activation", "init"] if act_first else ["init", "activation"]) + [
                "batchnorm", "residual", "pretraining"]
    elif kind == "exploding":
        keys = (["clipping", "tbptt", "recurrent_init", "penalties", "lower_lr"] if recurrent else
                ["clipping", "init", "lower_lr", "constraints", "batchnorm", "penalties"])
    elif kind == "saturation":
        keys = ["activation", "init", "batchnorm", "preprocess", "lower_lr"]
    elif kind == "dead_units":
        keys = ["leaky", "init", "lower_lr", "batchnorm"]
    elif kind == "nonfinite":
        keys = ["check_data", "clipping", "lower_lr", "init"] + (["tbptt"] if recurrent else [])
    elif kind == "stalled_updates":
        keys = ((["lstm", "recurrent_init"] if recurrent else ["init", "activation"])
                + ["batchnorm", "residual"])
    else:
        raise KeyError(kind)
    return [CATALOGUE[k] for k in keys]

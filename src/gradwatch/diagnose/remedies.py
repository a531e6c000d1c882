"""The remedies the seeds list, each with where it comes from; each rule ranks them for its kind (its module's
``remedies``).

Seed 000 (after Nielsen ch. 5) lists for the unstable gradient: a. a better activation, b. batch normalisation,
c. weight initialisation, d. skip connections, e. gradient clipping, f. layer-wise pretraining. Seed 002 (RNNs):
for exploding gradients truncated BPTT, penalties, gradient clipping; for vanishing ones weight initialisation,
echo state networks, LSTM. Seed 001: Xavier/He derivations, batch norm, input preprocessing. Seed 003: residual
networks, weight constraints ‖W‖₂ ≤ 1 with 1-Lipschitz σ. Seed 004: ReLU / dying ReLU / LeakyReLU, PReLU, ELU,
SELU; L2 = weight decay. A remedy that no seed states says so in its ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradwatch.diagnose.facts import Facts


@dataclass(frozen=True)
class Remedy:
    key: str
    title: str
    detail: str
    source: str  # the lecture it comes from (by name: "Nielsen, ch. 5"), or the paper/practice when none states it
    why: str = ""  # why it applies to this model and loop

    def __str__(self) -> str:
        why = f" Here: {self.why}" if self.why else ""
        return f"{self.title} — {self.detail}.{why} [{self.source}]"

    def because(self, why: str) -> Remedy:
        return replace(self, why=why)


CATALOGUE: dict[str, Remedy] = {
    r.key: r
    for r in [
        Remedy(
            "activation",
            "Use a non-saturating activation (ReLU, LeakyReLU, ELU, SELU)",
            "σ' of the sigmoid is at most 1/4, so every layer shrinks the gradient; "
            "ReLU's derivative is 1 where active",
            "Nielsen, ch. 5, remedy a; Bursuc, “The problems with depth” (ReLU, LeakyReLU, ELU, SELU)",
        ),
        Remedy(
            "init",
            "Initialise for the activation: He for ReLU, Xavier/Glorot for tanh/sigmoid, or LSUV",
            "choose Var(w) so each layer keeps the variance of activations and gradients (gain ≈ 1 per layer)",
            "Nielsen, ch. 5, remedy c; Polykovskiy, Technosphere lecture 5 (Xavier and He derivations); "
            "Deep Learning A-Z, “The Vanishing Gradient Problem” (weight initialisation); LSUV: Mishkin & Matas 2016",
        ),
        Remedy(
            "batchnorm",
            "Add batch normalisation before the activation",
            "keeps each layer's pre-activations near zero mean, unit variance, out of the saturated range",
            "Nielsen, ch. 5, remedy b; Polykovskiy, Technosphere lecture 5 (batch normalisation, its results on "
            "sigmoid inputs)",
        ),
        Remedy(
            "residual",
            "Add residual (skip) connections",
            "an identity path lets the gradient reach early layers without passing every layer's Jacobian",
            "Nielsen, ch. 5, remedy d; Giselsson, “Deep Learning” (residual networks)",
        ),
        Remedy(
            "clipping",
            "Clip the gradient norm (torch.nn.utils.clip_grad_norm_)",
            "rescale g to threshold·g/‖g‖ when ‖g‖ exceeds the threshold",
            "Nielsen, ch. 5, remedy e; Deep Learning A-Z, “The Vanishing Gradient Problem” (gradient clipping)",
        ),
        Remedy(
            "constraints",
            "Constrain the weights (‖W‖₂ ≤ 1, e.g. spectral normalisation)",
            "with a 1-Lipschitz activation the backward pass then cannot grow: ‖δ_j‖ ≤ ‖δ_{j+1}‖",
            "Giselsson, “Deep Learning” (weight constraints)",
        ),
        Remedy(
            "penalties",
            "Penalise large weights (L2 / weight decay)",
            "keeps weights, and so the per-layer gain, from growing",
            "Deep Learning A-Z, “The Vanishing Gradient Problem” (penalties); Bursuc, “The problems with depth” "
            "(L2 = weight decay)",
        ),
        Remedy(
            "pretraining",
            "Layer-wise pretraining",
            "train layers one at a time so early layers start from useful weights",
            "Nielsen, ch. 5, remedy f",
        ),
        Remedy(
            "lower_lr",
            "Lower the learning rate",
            "large steps push units into saturation or kill ReLUs and let weights grow until gradients overflow",
            "general practice (dying ReLUs after large updates: Bursuc, “The problems with depth”)",
        ),
        Remedy(
            "leaky",
            "Use LeakyReLU / PReLU / ELU instead of ReLU",
            "a small negative slope keeps a gradient flowing through units whose input is negative",
            "Bursuc, “The problems with depth” (dying ReLU, LeakyReLU, PReLU, ELU)",
        ),
        Remedy(
            "preprocess",
            "Centre and scale the inputs (zero mean, unit variance)",
            "inputs far from zero push the first layer's units into saturation",
            "Polykovskiy, Technosphere lecture 5 (preprocessing: centring, decorrelation, whitening)",
        ),
        Remedy(
            "check_data",
            "Look for inf/NaN in the inputs and the loss (log 0, division by 0)",
            "a non-finite value in the forward pass makes every gradient non-finite",
            "general practice",
        ),
        Remedy(
            "lstm",
            "Use LSTM or GRU cells instead of a plain RNN",
            "their additive cell state carries the gradient across many time steps",
            "Deep Learning A-Z, “The Vanishing Gradient Problem” (LSTM)",
        ),
        Remedy(
            "tbptt",
            "Truncated backpropagation through time",
            "stop backpropagating after k steps so products of many Jacobians never form",
            "Deep Learning A-Z, “The Vanishing Gradient Problem” (truncated backpropagation)",
        ),
        Remedy(
            "esn",
            "Echo state network (fixed random reservoir, train the readout only)",
            "no gradient has to pass through the recurrence",
            "Deep Learning A-Z, “The Vanishing Gradient Problem” (echo state networks)",
        ),
        Remedy(
            "recurrent_init",
            "Initialise W_rec with spectral radius ≈ 1 (orthogonal or scaled identity)",
            "Pascanu: ∂x_t/∂x_k is a product of W_recᵀ diag(σ'); its norm grows or decays like ρ(W_rec)^(t−k)",
            "Deep Learning A-Z, “The Vanishing Gradient Problem” (weight initialisation; small / large W_rec)",
        ),
        Remedy(
            "warmup",
            "Warm the learning rate up over the first steps",
            "Adam's first steps are as large as the learning rate whatever the gradient; a warm-up keeps them small "
            "while its moment estimates settle",
            "Goyal et al. 2017; Liu et al. 2020 on Adam's early variance",
        ),
        Remedy(
            "init_scale",
            "Initialise with a smaller scale (e.g. std 0.02, output projections scaled by 1/√(2·layers))",
            "keeps each residual branch's contribution, and so the gradient through the stack, bounded at the start",
            "GPT-2, Radford et al. 2019; the variance argument of Polykovskiy, Technosphere lecture 5",
        ),
        Remedy(
            "norm_placement",
            "Normalise before each sub-layer (pre-LN) rather than after it",
            "with post-LN the gradient of the early layers depends on the depth and needs a warm-up; pre-LN keeps "
            "an identity path through every block",
            "Xiong et al. 2020",
        ),
        Remedy(
            "attention_scale",
            "Check the attention scaling (1/√d_head) and compute softmax in float32",
            "unscaled or low-precision attention logits saturate the softmax and overflow",
            "Vaswani et al. 2017",
        ),
        Remedy(
            "raise_lr",
            "Raise the learning rate (or lower Adam's eps if the gradients are below it)",
            "a step smaller than 1e-6 of the weights leaves them where they are",
            "general practice; Karpathy's update-ratio rule of thumb ≈ 1e-3",
        ),
    ]
}


def pick(*entries: tuple[str, str, bool]) -> list[Remedy]:
    """The catalogue's remedies whose condition holds, in the order given, each with why it applies here."""
    return [CATALOGUE[key].because(why) for key, why, applies in entries if applies]


def remedies_for(kind: str, facts: Facts, **evidence: Any) -> list[Remedy]:
    """The remedies for a finding of ``kind`` that fit the model and loop (:class:`~gradwatch.diagnose.facts.Facts`),
    most relevant first; nothing the model or loop already has is proposed. Each rule ranks its own (its module's
    ``remedies``); ``evidence`` is what that ranking takes (vanishing: ``activation_limited``)."""
    from gradwatch.diagnose.rules import BY_KIND  # the rules import this module

    rule = BY_KIND.get(kind)
    if rule is None or rule.remedies is None:
        raise KeyError(
            f"kind={kind!r}: no ranked remedies; kinds with them: "
            f"{', '.join(k for k, r in BY_KIND.items() if r.remedies is not None)}"
        )
    return rule.remedies(facts, **evidence)

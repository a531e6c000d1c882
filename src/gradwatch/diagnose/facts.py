"""What the model and the loop already have, read from a history, so remedies never propose what is there.

From the layer kinds and activations the watch recorded (normalisation layers, ReLU-family activations, gated
recurrent cells, attention), from the autograd graph (skip connections, ``meta["residual"]``), from the recorded
norms (the loop clips when ``grad_norm_preclip`` has values) and from the optimizers' names (adaptive ones
rescale each parameter's step, so a tiny raw gradient matters only through the update).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from gradwatch.probe.history import History
from gradwatch.stat_names import GRAD_NORM_PRECLIP

# normalisation layers by class: torch's (BatchNorm2d, LayerNorm, GroupNorm, …), Hugging Face's (LlamaRMSNorm,
# T5LayerNorm) and custom ones named the usual way (L2Norm, ScaleNorm); whatever their class, layers whose
# parameters are all vectors (gains, scales) are also judged apart from matrices (Signals.vector)
NORM_KINDS = re.compile(r"Norm(\dd)?$|LayerNorm|RMSNorm", re.I)
ATTENTION = re.compile(r"attn|attention|(^|\.)(q|k|v)_?proj$|(^|\.)(query|key|value)$|MultiheadAttention", re.I)
RELU_FAMILY = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "prelu", "relu6", "hardswish")
SATURATING = ("sigmoid", "tanh", "softsign", "hardtanh", "hardsigmoid")
GATED = ("LSTM", "GRU", "LSTMCell", "GRUCell")
RECURRENT = ("RNN", "RNNCell", *GATED)
ADAPTIVE = re.compile(r"adam|rmsprop|adagrad|adadelta|adafactor|lamb|lion|sophia|nadam|radam", re.I)


@dataclass(frozen=True)
class Facts:
    normalised: bool  # batch/layer/group/RMS norm layers
    residual: bool | None  # skip connections (None: unknown)
    relu_family: bool  # non-saturating activations (ReLU, GELU, SiLU, …)
    saturating: bool  # sigmoid/tanh-like activations
    gated: bool  # LSTM/GRU cells
    recurrent: bool  # any recurrent layer
    transformer: bool  # attention layers
    clips: bool  # the loop clips the gradient norm
    adaptive: bool | None  # Adam-like optimizer (None: unknown)

    @classmethod
    def of(cls, h: History) -> Facts:
        kinds = set(h.kinds)
        acts = set(a for a in h.activations if a)
        residual = h.meta.get("residual")
        transformer = any(ATTENTION.search(n) for n in h.layers) or "MultiheadAttention" in kinds
        optimizers = h.meta.get("optimizers") or []
        clips = GRAD_NORM_PRECLIP in h.stats and bool(np.isfinite(h.stat(GRAD_NORM_PRECLIP)).any())
        recurrent = bool(kinds & set(RECURRENT))
        if recurrent and not transformer:
            residual = False  # the additions inside a recurrence (W_ih·x + W_hh·h) look like skips; they are not
        return cls(
            normalised=any(NORM_KINDS.search(k) for k in kinds),
            residual=bool(residual) or transformer if residual is not None or transformer else None,
            relu_family=bool(acts & set(RELU_FAMILY)) or transformer,
            saturating=bool(acts & set(SATURATING)),
            gated=bool(kinds & set(GATED)),
            recurrent=recurrent,
            transformer=transformer,
            clips=clips,
            adaptive=(any(ADAPTIVE.search(o) for o in optimizers) if optimizers else None),
        )

    def describe(self) -> str:
        have = [
            name
            for name, on in (
                ("normalisation layers", self.normalised),
                ("skip connections", self.residual),
                ("ReLU-family activations", self.relu_family),
                ("gated recurrent cells", self.gated),
                ("attention", self.transformer),
                ("gradient clipping", self.clips),
                ("an adaptive optimizer", self.adaptive),
            )
            if on
        ]
        return "the model and loop already have " + ", ".join(have) if have else ""

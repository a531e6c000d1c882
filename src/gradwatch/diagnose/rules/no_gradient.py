"""``no_gradient``: a trainable parameter that an optimizer owns never gets a gradient while the others do.

Counted at every optimizer step (:mod:`gradwatch.probe.silent.presence`): the parameter requires a gradient, an
optimizer steps it, its optimizer's other parameters had gradients on at least ``MIN_STEPS`` steps, and it had
none on any of them — a branch cut from the graph (``.detach()``, ``.data``, ``torch.no_grad()``, a NumPy round
trip) or a module that is built but never called. A parameter used on some steps only (a mixture-of-experts expert,
an auxiliary head used every few steps) got a gradient at least once and is not this.
"""

from __future__ import annotations

import numpy as np

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.notes import first_measured, layers_of
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule

KIND = "no_gradient"
MIN_STEPS = 5  # optimizer steps with gradients on the other parameters before a parameter without one is reported
REMEDY = Remedy(
    "reconnect",
    "Reconnect the parameter to the loss",
    "in `forward`, follow the path from this module to the loss and remove what cuts it: a `.detach()`, a `.data`, "
    "a `torch.no_grad()` block, a `.item()` / `.numpy()` round trip, or a module built in `__init__` that "
    "`forward` never calls; if it is meant to stay fixed, `param.requires_grad_(False)` and leave it out of the "
    "optimizer",
    "PyTorch autograd mechanics (a tensor outside the graph gets no gradient)",
)


def find(ctx: Context) -> Finding | None:
    h, s = ctx.h, ctx.notes
    if s is None:  # the watch kept no notes (no optimizer, an older history)
        return None
    owned = np.asarray(s["owned"], bool) | np.asarray(s["owned_elsewhere"], bool)
    cond = (
        owned
        & np.asarray(s["requires_grad"], bool)
        & (np.asarray(s["with_grad"]) == 0)
        & (np.asarray(s["observed"]) >= MIN_STEPS)
    )
    idx = np.flatnonzero(cond)
    if not len(idx):
        return None
    names, observed = s["params"], s["observed"]
    lines = [
        f"parameter {names[i]}: no gradient on any of the {observed[i]} optimizer steps on which the other "
        "parameters of its optimizer had one"
        for i in idx[:8]
    ]
    if len(idx) > 8:
        lines.append(f"… and {len(idx) - 8} more parameters")
    layers = layers_of(h, s, idx)
    others = [c for c in range(len(h.layers)) if h.layers[c] not in layers]
    step = first_measured(h, [h.layers[c] for c in others]) if others else None
    return Finding(
        KIND,
        layers,
        int(h.steps[0]) if step is None else step,
        f"{len(idx)} trainable parameter(s) that an optimizer steps never get a gradient",
        {"lines": lines, "params": [names[i] for i in idx]},
        [REMEDY.because("the parameter requires a gradient and is stepped, but backward never reaches it")],
    )


RULE = Rule(KIND, 150, None, find, family="silent")

"""``not_in_optimizer``: a parameter gets gradients but no optimizer steps it.

Exact: the parameter had a gradient on at least ``MIN_STEPS`` optimizer steps, and neither a watched optimizer nor
any other optimizer that stepped while the watch was open has it in a parameter group — typically a layer replaced
after the optimizer was built, or a parameter group forgotten. Such a layer is also left out of the comparisons
of the other rules (it is never a reference: nothing trains it).
"""

from __future__ import annotations

import numpy as np

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.notes import first_measured, layers_of
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule

KIND = "not_in_optimizer"
MIN_STEPS = 2  # optimizer steps on which the parameter had a gradient
REMEDY = Remedy(
    "add_to_optimizer",
    "Give the parameter to the optimizer",
    "build the optimizer after the model is final (`optimizer = torch.optim.AdamW(model.parameters(), …)` after "
    '`model.head = nn.Linear(…)`), or add what was missed: `optimizer.add_param_group({"params": '
    "model.head.parameters()})`; if the layer is meant to stay fixed, `requires_grad_(False)` saves its backward",
    "PyTorch: torch.optim.Optimizer.add_param_group",
)


def find(ctx: Context) -> Finding | None:
    h, s = ctx.h, ctx.notes
    if s is None:  # the watch kept no notes (no optimizer, an older history)
        return None
    if not h.meta.get("optimizers"):
        return None
    free = ~(np.asarray(s["owned"], bool) | np.asarray(s["owned_elsewhere"], bool))
    idx = np.flatnonzero(free & (np.asarray(s["with_grad"]) >= MIN_STEPS))
    if not len(idx):
        return None
    names, got = s["params"], s["with_grad"]
    lines = [
        f"parameter {names[i]}: a gradient on {got[i]} steps, and no optimizer has it in a parameter group"
        for i in idx[:8]
    ]
    if len(idx) > 8:
        lines.append(f"… and {len(idx) - 8} more parameters")
    layers = layers_of(h, s, idx)
    step = first_measured(h, layers)
    return Finding(
        KIND,
        layers,
        int(h.steps[0]) if step is None else step,
        f"{len(idx)} parameter(s) get gradients that no optimizer applies: they never train",
        {"lines": lines, "params": [names[i] for i in idx]},
        [REMEDY.because("backward computes their gradient, but no optimizer's param_groups hold them")],
    )


RULE = Rule(KIND, 140, None, find, family="silent")

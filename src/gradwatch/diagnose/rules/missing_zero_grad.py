"""``missing_zero_grad``: an optimizer step's gradient still held the previous step's gradient.

The watch saw it directly (:mod:`gradwatch.probe.silent.stale`): the backward after an optimizer step found the
very ``.grad`` tensor that step had used, untouched, added to it, and the next step stepped on the sum. Gradient
accumulation over micro-batches *within* one optimizer step is not this: there the gradient is zeroed after each
step.
"""

from __future__ import annotations

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.notes import layers_of
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule

KIND = "missing_zero_grad"
REMEDY = Remedy(
    "zero_grad",
    "Zero the gradients once per optimizer step",
    "call `optimizer.zero_grad()` right after each `optimizer.step()` (or right before each step's first "
    "`loss.backward()`), on the optimizer that steps these parameters; with gradient accumulation, after the "
    "`optimizer.step()` that ends the accumulation only. `model.zero_grad()` on a submodule clears only that "
    "submodule",
    "PyTorch: torch.optim.Optimizer.zero_grad (backward adds into .grad)",
)


def find(ctx: Context) -> Finding | None:
    h, s = ctx.h, ctx.notes
    if s is None:  # the watch kept no notes (no optimizer, an older history)
        return None
    stale = {int(i): v for i, v in s["stale_grad"].items()}
    if not stale:
        return None
    idx = sorted(stale)
    step = min(v[0] for v in stale.values())
    names = s["params"]
    lines = [
        f"parameter {names[i]}: from step {stale[i][0]} the backward added to the .grad the previous optimizer "
        f"step had used, unchanged (seen on {stale[i][1]} checked step(s))"
        for i in idx[:8]
    ]
    if len(idx) > 8:
        lines.append(f"… and {len(idx) - 8} more parameters")
    layers = layers_of(h, s, idx)
    return Finding(
        KIND,
        layers,
        step,
        f"the gradient of {len(layers)} layer(s) is never zeroed between optimizer steps: each step "
        "steps on the sum of every gradient so far",
        {"lines": lines, "params": [names[i] for i in idx]},
        [
            REMEDY.because(
                "the .grad the optimizer stepped on was still there, unchanged, when the next backward added to it"
            )
        ],
    )


RULE = Rule(KIND, 110, None, find, family="silent")

"""``gradients_cleared``: backward passes reach the model, yet at every optimizer step no parameter has a gradient.

The watch saw a loss's backward reach the model's layers (it read their depth from that loss's autograd graph)
and counted, at each optimizer step, the parameters holding a gradient (:mod:`gradwatch.probe.silent.presence`):
none of the trainable parameters the optimizers own had one on any of at least ``MIN_STEPS`` steps. The
gradients were cleared between ``loss.backward()`` and ``optimizer.step()`` — typically an
``optimizer.zero_grad()`` (which sets ``.grad`` to None) placed after the backward instead of before it — so every
step skips every parameter and the model never trains. A loop that zeroes with ``set_to_none=False`` leaves
zero gradients instead: the watch then measures them (``stalled_updates``).
"""

from __future__ import annotations

import numpy as np

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.notes import layers_of
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.stat_names import GRAD_NORM

KIND = "gradients_cleared"
MIN_STEPS = 5  # optimizer steps taken without a single gradient
REMEDY = Remedy(
    "zero_grad_before_backward",
    "Clear the gradients before the backward, not between it and the step",
    "the order per step is `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()` (or zero right after "
    "the step); nothing between `backward()` and `step()` may set `.grad` to None",
    "PyTorch: torch.optim.Optimizer.zero_grad (set_to_none=True; the step skips parameters whose .grad is None)",
)


def find(ctx: Context) -> Finding | None:
    h, s = ctx.h, ctx.notes
    if s is None or not h.meta.get("optimizers") or h.meta.get("depth_from") != "loss":
        return None  # no optimizer watched, or no backward seen reaching the model
    steps = max((g["steps"] for g in s["lr"]), default=len(h))
    trainable = np.asarray(s["owned"], bool) & np.asarray(s["requires_grad"], bool)
    if steps < MIN_STEPS or not trainable.any() or (np.asarray(s["with_grad"])[trainable] > 0).any():
        return None
    if GRAD_NORM in h.stats and np.isfinite(h.stat(GRAD_NORM)).any():
        return None  # a gradient was measured after all
    idx = np.flatnonzero(trainable)
    layers = layers_of(h, s, idx)
    return Finding(
        KIND,
        layers,
        int(h.steps[0]),
        f"backward reaches the model, but none of its {len(idx)} trainable parameter(s) holds a gradient at any of "
        f"{steps} optimizer steps: the gradients are cleared before the step, which then changes nothing",
        {
            "lines": [
                f"{steps} optimizer step(s), 0 with a gradient on any of {len(idx)} parameter(s) the optimizers own",
                "the backward of a loss reached these layers (the watch read their depth from its graph)",
            ],
            "optimizer_steps": steps,
        },
        [REMEDY.because("`.grad` is None at every `optimizer.step()` although the backward ran")],
    )


RULE = Rule(KIND, 115, None, find, family="silent")

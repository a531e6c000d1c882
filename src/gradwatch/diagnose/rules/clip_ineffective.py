"""``clip_ineffective``: gradients clipped while a GradScaler's scale is still on them.

Seen at the clipping call (:mod:`gradwatch.probe.silent.clip_order`): a GradScaler had scaled a loss since its
last ``update()`` and had not unscaled the optimizer that steps the clipped parameters. The clip then compares
``scale × ‖g‖`` with the threshold: with the default scale of 65536 it clips every step, whatever the gradient.
"""

from __future__ import annotations

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.notes import layers_of
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import fmt

KIND = "clip_ineffective"
REMEDY = Remedy(
    "unscale_first",
    "Unscale before clipping",
    "call `scaler.unscale_(optimizer)` right before `torch.nn.utils.clip_grad_norm_(…)`, between "
    "`scaler.scale(loss).backward()` and `scaler.step(optimizer)`",
    "PyTorch AMP examples: 'Working with unscaled gradients — gradient clipping'",
)


def find(ctx: Context) -> Finding | None:
    h, s = ctx.h, ctx.notes
    if s is None:  # the watch kept no notes (no optimizer, an older history)
        return None
    c = s["clip_scaled"]
    if c.get("first") is None:
        return None
    layers = layers_of(h, s, c["params"])
    scale = c.get("scale")
    lines = [
        f"{c['function']} was called on {c['steps']} step(s) while the GradScaler's scale"
        + (f" ({fmt(scale)})" if scale is not None else "")
        + " was on the gradients"
    ]
    return Finding(
        KIND,
        layers,
        int(c["first"]),
        f"{c['function']} clips gradients still multiplied by the GradScaler's scale: the threshold is "
        "compared with scale × ‖g‖",
        {"lines": lines, "scale": scale, "steps": c["steps"]},
        [REMEDY.because("the scaler had not unscaled this optimizer's gradients when clipping ran")],
    )


RULE = Rule(KIND, 120, None, find, family="silent")

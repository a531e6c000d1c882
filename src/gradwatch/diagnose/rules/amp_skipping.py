"""``amp_skipping``: a GradScaler skips optimizer step after optimizer step.

GradScaler skips a step whose unscaled gradients hold an inf/NaN and halves its scale; a few skips at the start
while the scale settles are normal. ``MIN_RUN`` consecutive skipped steps mean the gradients overflow at any scale
(the forward or the loss produces the inf/NaN), and the model is not trained at all.
"""

from __future__ import annotations

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule

KIND = "amp_skipping"
MIN_RUN = 8  # consecutive skipped steps (the scale halves each time: 2^8 = 256× smaller)
REMEDY = Remedy(
    "fp32_loss",
    "Find the non-finite value the scaler keeps skipping",
    'watch with `on_nonfinite="locate"` to name the module where it starts; compute the loss (and softmax / '
    "log / exp) in float32 (`with torch.autocast(device_type, enabled=False):` around it, inputs `.float()`), or "
    "train in bfloat16, which needs no scaler",
    "PyTorch AMP docs (GradScaler skips steps with inf/NaN gradients and lowers the scale)",
)


def find(ctx: Context) -> Finding | None:
    h = ctx.h
    skipped = sorted(set(h.meta.get("skipped_steps") or []))
    best: int | None = None
    run: list[int] = []
    for st in skipped:
        run = run + [st] if run and st == run[-1] + 1 else [st]
        if len(run) >= MIN_RUN and best is None:
            best = run[0]
    if best is None:
        return None
    return Finding(
        KIND,
        ["(model)"],
        int(best),
        f"the GradScaler skipped {len(skipped)} optimizer step(s), at least "
        f"{MIN_RUN} in a row from step {best}: the weights are not updated",
        {
            "lines": [f"skipped steps: {', '.join(map(str, skipped[:12]))}" + (" …" if len(skipped) > 12 else "")],
            "skipped_steps": skipped,
        },
        [REMEDY.because("every step's gradients hold an inf/NaN whatever the scale")],
    )


RULE = Rule(KIND, 180, None, find, family="silent")

"""``lr_collapse``: a parameter group's learning rate fell to about zero and training went on at it.

Read from ``param_groups[i]["lr"]`` after every optimizer step (:mod:`gradwatch.probe.silent.rates`). A rate at or
below ``COLLAPSE_RATIO`` of its peak (or 0) for at least ``MIN_RUN`` consecutive steps that make up at least
``MIN_SHARE`` of the run is reported — typically a scheduler meant per epoch stepped per batch (StepLR's
``step_size`` or CosineAnnealingLR's ``T_max`` counted in epochs). A schedule that anneals to zero over the last
few percent of training is not.
"""

from __future__ import annotations

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import fmt
from gradwatch.probe.silent.rates import COLLAPSE_RATIO

KIND = "lr_collapse"
MIN_RUN = 5  # consecutive optimizer steps at a collapsed learning rate
MIN_SHARE = 0.05  # … that are at least this share of the group's steps
REMEDY = Remedy(
    "scheduler_per_epoch",
    "Step the scheduler as often as it was built for",
    "move `scheduler.step()` out of the batch loop to the end of each epoch, or build the scheduler in optimizer "
    "steps (`T_max=epochs * len(loader)`, `step_size` in steps); a rate of exactly 0 from the start comes from the "
    "schedule's formula (`LambdaLR` returning 0) or `lr=0`",
    "PyTorch: torch.optim.lr_scheduler (schedulers count scheduler.step() calls)",
)


def find(ctx: Context) -> Finding | None:
    s = ctx.notes
    if s is None:  # the watch kept no notes (no optimizer, an older history)
        return None
    hits = []
    for g in s["lr"]:
        runs = [r for r in g["runs"] if r[1] >= MIN_RUN]
        if runs and g["collapsed_steps"] >= MIN_SHARE * g["steps"]:
            hits.append((runs[0], g))
    if not hits:
        return None
    params = s.get("lr_params", {})
    lines: list[str] = []
    layers: list[str] = []
    step = min(run[0] for run, _ in hits)
    for (first, n, low, peak), g in hits:
        lines.append(
            f"optimizer {g['optimizer']}, group {g['group']}: lr {fmt(low)} from step {first} ({n} steps), "
            f"after a peak of {fmt(peak)}; {g['collapsed_steps']} of {g['steps']} steps at ≤ "
            f"{COLLAPSE_RATIO:g} of the peak"
        )
        layers += [n_ for n_ in params.get(f"{g['optimizer']}.{g['group']}", []) if n_ not in layers]
    return Finding(
        KIND,
        layers,
        int(step),
        "the learning rate collapsed to about zero while training went on: the weights stop moving",
        {"lines": lines},
        [REMEDY.because(f"the scheduler drove the learning rate to ≤ {COLLAPSE_RATIO:g} of its peak for many steps")],
    )


RULE = Rule(KIND, 170, None, find, family="silent")

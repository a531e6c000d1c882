"""``replica_divergence``: the replicas of a DistributedDataParallel model no longer hold the same weights.

Under DDP every rank applies the same all-reduced gradient to the same weights, so the replicas stay bitwise
equal. The watch takes one checksum per layer on check steps and combines it across the ranks
(:mod:`gradwatch.probe.silent.replicas`); a relative spread above its tolerance is reported, with the first step
it was seen.
"""

from __future__ import annotations

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule
from gradwatch.diagnose.signals import fmt

KIND = "replica_divergence"
REMEDY = Remedy(
    "same_update",
    "Make every rank apply the same update",
    "look between `loss.backward()` and `optimizer.step()` for code that differs by rank (`if rank == 0:` around a "
    "weight change, clipping or a learning-rate change), a `model.no_sync()` outside gradient accumulation, "
    "parameters added or changed after `DistributedDataParallel(model)` wrapped the model, or per-rank seeds for "
    "anything that touches the weights; to resynchronise, `torch.distributed.broadcast(p.data, src=0)` for each "
    "parameter",
    "PyTorch DDP design notes (replicas stay equal because every rank applies the same all-reduced gradient)",
)


def find(ctx: Context) -> Finding | None:
    h, s = ctx.h, ctx.notes
    if s is None:  # the watch kept no notes (no optimizer, an older history)
        return None
    r = s.get("replicas")
    if not r or not r["diverged"]:
        return None
    div = {int(c): v for c, v in r["diverged"].items()}
    cols = sorted(div, key=lambda c: (div[c][0], c))
    step = min(v[0] for v in div.values())
    lines = [
        f"layer {h.layers[c]}: replicas differ by {fmt(div[c][1])} of the weights' norm at step {div[c][0]} "
        f"(largest spread seen {fmt(r['worst'][c])})"
        for c in cols[:8]
    ]
    lines.append(f"checked every {r['every']} steps, {r['checks']} checks")
    return Finding(
        KIND,
        [h.layers[c] for c in sorted(div)],
        step,
        f"the replicas' weights differ in {len(div)} layer(s): the ranks no longer train one model",
        {"lines": lines, "first_step": {h.layers[c]: div[c][0] for c in cols}},
        [REMEDY.because("the per-layer checksums of the replicas differ")],
    )


RULE = Rule(KIND, 130, None, find, family="silent")

"""``eval_mode``: optimizer steps taken while the model, or a dropout / batch-norm module in it, is in eval mode.

Read from the modules' ``training`` flags at each optimizer step (:mod:`gradwatch.probe.silent.modes`): dropout
is then off and batch norm normalises with its running averages and stops updating them — usually a
``model.eval()`` for validation without a ``model.train()`` after it.
"""

from __future__ import annotations

from gradwatch.diagnose.findings import Finding
from gradwatch.diagnose.remedies import Remedy
from gradwatch.diagnose.rule import Context, Rule

KIND = "eval_mode"
REMEDY = Remedy(
    "train_mode",
    "Put the model back in training mode",
    "call `model.train()` at the start of each training epoch (after the validation loop that called "
    "`model.eval()`), before the first forward of the training steps",
    "PyTorch: torch.nn.Module.train / eval",
)


def find(ctx: Context) -> Finding | None:
    s = ctx.notes
    if s is None:  # the watch kept no notes (no optimizer, an older history)
        return None
    e = s["eval_mode"]
    if e.get("first") is None:
        return None
    what = "the model" if e["whole_model"] else "dropout module(s)"
    lines = [f"{e['steps']} optimizer step(s) with {what} in eval mode, from step {e['first']}"]
    if e["dropout"]:
        lines.append("dropout off in: " + ", ".join(e["dropout"][:8]))
    if e["batchnorm"]:
        lines.append("batch norm using running averages (and not updating them) in: " + ", ".join(e["batchnorm"][:8]))
    modules = ["(model)"] if e["whole_model"] else list(e["modules"])
    return Finding(
        KIND,
        modules,
        int(e["first"]),
        f"optimizer steps are taken with {what} in eval mode: dropout and batch norm behave as at test time",
        {"lines": lines, "modules": e["modules"]},
        [REMEDY.because("the training flags were off when the optimizer stepped")],
    )


RULE = Rule(KIND, 160, None, find, family="silent")

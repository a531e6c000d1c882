"""How a finished run is shown: a run whose loss blew up is *diverged*, even when the lab stored it as completed.

The lab marks a run ``diverged`` when a training loss became NaN or infinite. A loss can also explode to a huge
but finite number (SGD on an exploding net reaches 1e31 and keeps going); stored as ``completed`` it would read
as a success. The pages and the API therefore add an ``outcome``: ``diverged`` when the lab said so, or the last
loss is not finite, or it is at least :data:`DIVERGED_LOSS`; otherwise the stored status.
"""

from __future__ import annotations

import math
from typing import Any

DIVERGED_LOSS = 1e6  # a mean batch loss this large is divergence for the lab's tasks (their losses start near 1)


def outcome(status: str, summary: dict[str, Any]) -> str:
    """``diverged`` for a run that diverged (see the module docstring), else ``status``. ``summary`` is the
    stored run's summary; a run without a ``loss`` in it (a watched run of the user's own) keeps its status."""
    if status == "diverged":
        return "diverged"
    if status != "completed" or "loss" not in summary:
        return status
    loss = summary["loss"]
    if loss is None:  # NaN stored as null
        return "diverged"
    try:
        value = float(loss)
    except (TypeError, ValueError):
        return status
    return "diverged" if not math.isfinite(value) or abs(value) >= DIVERGED_LOSS else status

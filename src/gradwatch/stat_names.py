"""The names of the recorded statistics, typed: one constant each, shared by every package.

The values are the strings stored in histories, the run store (sqlite), JSON and the trackers (W&B, TensorBoard,
MLflow), so they never change. Plain ``Final`` constants rather than a ``str`` Enum: on Python 3.10 and 3.11 a
``(str, Enum)`` member formats as ``Name.MEMBER`` in f-strings and would leak into keys. :data:`StatName` is the
type of any one of them. What each measures, where it attaches and what it costs is declared in
:mod:`gradwatch.probe.stats` (``CATALOGUE``); this module sits below every package so that all may import it
without the probe (and torch).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

GRAD_NORM: Final = "grad_norm"
NONFINITE: Final = "nonfinite"
GRAD_NORM_PRECLIP: Final = "grad_norm_preclip"
GRAD_ABS_MEAN: Final = "grad_abs_mean"
GRAD_ABS_MAX: Final = "grad_abs_max"
WEIGHT_NORM: Final = "weight_norm"
WEIGHT_NONFINITE: Final = "weight_nonfinite"
UPDATE_RATIO: Final = "update_ratio"
ACT_MEAN: Final = "act_mean"
ACT_STD: Final = "act_std"
ACT_SATURATION: Final = "act_saturation"
ACT_DEAD: Final = "act_dead"
ACT_NONFINITE: Final = "act_nonfinite"
BACKWARD_GAIN: Final = "backward_gain"
GAIN_ACTIVATION: Final = "gain_activation"
GRAD_HIST: Final = "grad_hist"
GRAD_DEAD: Final = "grad_dead"

StatName = Literal[
    "grad_norm",
    "grad_abs_mean",
    "grad_abs_max",
    "nonfinite",
    "weight_norm",
    "update_ratio",
    "grad_norm_preclip",
    "weight_nonfinite",
    "act_mean",
    "act_std",
    "act_saturation",
    "act_dead",
    "act_nonfinite",
    "backward_gain",
    "gain_activation",
    "grad_hist",
    "grad_dead",
]
STAT_NAMES: Final[tuple[StatName, ...]] = get_args(StatName)  # every name, in the order the watch records them

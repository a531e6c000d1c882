"""JSON for the API: NumPy arrays become lists, NaN and ±inf become ``null`` (JSON has no literal for them)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def clean(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps`` accepts with ``allow_nan=False``."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj

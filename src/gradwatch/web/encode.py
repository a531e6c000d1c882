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


MAX_ECHO_CHARS = 80  # an error echoes at most this much of a bad value
MAX_ECHO_ITEMS = 8  # ... and this many items of a list or object, one level deep
MAX_ECHO_DIGITS = 30  # ... and integers of at most this many digits (others as a short description)


def short(value: Any, depth: int = 0) -> Any:
    """A bad value as an error may echo it: short strings, small numbers, lists and objects cut to a few items
    one level deep (a request cannot make its own error answer large or deeply nested)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if value.bit_length() > 3.33 * MAX_ECHO_DIGITS:
            return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[:MAX_ECHO_CHARS]).decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= MAX_ECHO_CHARS else value[:MAX_ECHO_CHARS] + "…"
    if depth >= 1:
        return "…"
    if isinstance(value, dict):
        return {str(k)[:MAX_ECHO_CHARS]: short(v, depth + 1) for k, v in list(value.items())[:MAX_ECHO_ITEMS]}
    if isinstance(value, (list, tuple)):
        items = [short(v, depth + 1) for v in list(value[:MAX_ECHO_ITEMS])]
        return items + ["…"] if len(value) > MAX_ECHO_ITEMS else items
    return short(str(value), depth)

"""JSON in and out, shared by the report files and the CLI: NaN and ±inf become strings (JSON has no literal
for them) and files are replaced atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _clean(obj: Any) -> Any:
    """Make floats JSON-safe: inf/nan become strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    """Indented JSON, non-ASCII kept, non-finite floats as strings."""
    return json.dumps(_clean(obj), indent=2, ensure_ascii=False)


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as JSON atomically (a temporary file, then a rename), so no half-written file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(to_json(obj) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path

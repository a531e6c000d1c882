"""Pieces shared by the CLI's commands: consoles, JSON output, the --out directory."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def _clean(obj: Any) -> Any:
    """Make floats JSON-safe: inf/nan become strings (JSON has no literal for them)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, ensure_ascii=False)


def print_json(obj: Any) -> None:
    """Plain JSON on stdout (no colour, no wrapping), for ``--json``."""
    print(to_json(obj))


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(to_json(obj) + "\n", encoding="utf-8")
    tmp.replace(path)  # never leave a half-written file
    return path


def out_dir(path: str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        from gradwatch.errors import ConfigError

        raise ConfigError("out", str(path), "must be a directory (it exists and is a file)")
    p.mkdir(parents=True, exist_ok=True)
    return p

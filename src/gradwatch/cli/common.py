"""Pieces shared by the CLI's commands: consoles, JSON output, the --out directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console

from gradwatch.errors import ConfigError, PathError
from gradwatch.io import to_json, write_json  # noqa: F401  (re-exported for the commands)

console = Console()
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Plain JSON on stdout (no colour, no wrapping), for ``--json``."""
    print(to_json(obj))


def out_dir(path: str | None, param: str = "out") -> Path | None:
    """The directory ``--out`` names, created if needed; a file there, or one that cannot be created or written,
    is a one-line :class:`~gradwatch.errors.PathError`."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise PathError(param, path, "is a file; expected a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(param, path, f"cannot be created ({exc.strerror or exc})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise PathError(param, path, "cannot be written (permission denied)")
    return p


def output_file(path: str | None, param: str = "plot", suffix: str = ".png") -> Path | None:
    """The file ``--plot`` names: it must end in ``suffix`` (so what is written is what was asked for) and its
    directory must exist and be writable."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.is_dir():
        raise PathError(
            param,
            path,
            f"is a directory; expected a file name ending in {suffix}, e.g. {Path(path) / ('plot' + suffix)}",
        )
    if p.suffix.lower() != suffix:
        raise ConfigError(param, str(path), f"expected a file name ending in {suffix}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise PathError(param, path, f"its directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise PathError(param, path, "cannot be written (permission denied)")
    return p


def open_store(path: str, *, must_exist: bool = False):
    """The run store at ``path``: for reading only when ``must_exist`` (``runs``, ``show``: a read-only store
    can be listed), else opened for writing and created if missing."""
    from gradwatch.store import RunStore

    return RunStore(path, readonly=must_exist)

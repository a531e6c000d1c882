"""A monitoring hook must never break the user's training: catch, report once, disable, go on.

:class:`Guard` runs a piece of the watch's work (``with guard("gradient statistics", layer): ...``). If it raises,
the exception is swallowed, one ``RuntimeWarning`` names what failed, where and why, and that piece is disabled
for the rest of the run (``guard.enabled(what)`` is then False and ``guard.disabled`` says why). Exceptions the
user asked for (``on_nonfinite="raise"``) pass through: list their types in ``passthrough``.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager


class Guard:
    def __init__(self, passthrough: tuple[type[BaseException], ...] = ()):
        self.passthrough = passthrough
        self.disabled: dict[str, str] = {}  # what -> why (with where)

    def enabled(self, what: str) -> bool:
        return what not in self.disabled

    @contextmanager
    def __call__(self, what: str, where: str = ""):
        try:
            yield
        except self.passthrough:
            raise
        except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes into the training loop
            self.fail(what, exc, where)

    def fail(self, what: str, exc: BaseException, where: str = "") -> None:
        if what in self.disabled:
            return
        reason = f"{type(exc).__name__}: {exc}"
        self.disabled[what] = f"{reason}{f' (at {where})' if where else ''}"
        warnings.warn(f"gradwatch: {what} failed{f' at {where}' if where else ''} and is disabled for the rest of "
                      f"this watch; training goes on ({reason})", RuntimeWarning, stacklevel=3)

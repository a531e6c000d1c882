"""Text that came from a user (a path, a stored config value, a module name) made safe to print with rich.

Rich reads ``[...]`` as markup, so ``[/]`` in a store path would crash a print, and raw control characters
(ANSI escapes) would reach the terminal. :func:`clean` makes control characters visible; :func:`markup_safe`
also escapes the markup so the value can sit inside an f-string that rich parses; :func:`plain` returns a
:class:`rich.text.Text`, which rich never parses, for table cells and titles.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.markup import escape
from rich.text import Text


def clean(value: Any, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every control character written as an escape (``\\x1b``, ``\\n``)."""
    out = []
    for ch in str(value):
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\u200d":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def markup_safe(value: Any) -> str:
    """A user string to put inside rich markup: control characters made visible, ``[`` escaped."""
    return escape(clean(value))


def plain(value: Any, style: str = "") -> Text:
    """A rich ``Text`` of a user string (never parsed as markup), control characters made visible."""
    return Text(clean(value), style=style)

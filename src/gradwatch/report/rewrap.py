"""Text that was wrapped at one width (a diagnosis is wrapped at 116 columns when it is made, and stored so),
wrapped again once, at the width of the terminal it is printed on — instead of the terminal folding every long
line a second time.

A line continues the one before when it is indented deeper than its paragraph's first line and the line before
was full: its next word would not have fitted in the width the text was wrapped at (how ``textwrap`` breaks).
Evidence lines and list items at their own indentation stay lines of their own.
"""

from __future__ import annotations

import re
import textwrap

WRAPPED_AT = 116  # the width diagnoses are wrapped at (gradwatch.diagnose.findings.WRAP)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def paragraphs(text: str, wrapped_at: int = WRAPPED_AT) -> list[tuple[str, str, str]]:
    """(first-line indent, continuation indent, the words) of each logical line of ``text``."""
    out: list[list] = []  # [first indent, continuation indent or None, words, last physical line]
    for line in text.splitlines():
        words = line.split()
        prev = out[-1] if out else None
        if (
            prev is not None
            and words
            and _indent(line) > len(prev[0])
            and (prev[1] is None or _indent(line) == len(prev[1]))
            and len(prev[3]) + 1 + len(words[0]) > wrapped_at
        ):
            prev[1] = prev[1] or " " * _indent(line)
            hyphen = prev[2].endswith("-") and prev[2][-2:-1].isalnum()  # textwrap broke "update-ratio" here
            prev[2] += ("" if hyphen else " ") + line.strip()
            prev[3] = line
            continue
        out.append([" " * _indent(line), None, line.strip(), line])
    return [(first, cont if cont is not None else first + " " * _hang(words), words) for first, cont, words, _ in out]


def _hang(words: str) -> int:
    """How far a paragraph's next lines hang in: past a list marker ("1. ", "- "), else 2."""
    marker = re.match(r"(\d+\.|[-•*])\s", words)
    return len(marker.group(0)) if marker else 2


def rewrap(text: str, width: int, wrapped_at: int = WRAPPED_AT) -> str:
    """``text`` (wrapped at ``wrapped_at``) unwrapped and wrapped again at ``width`` columns (at least 40)."""
    width = max(40, int(width))
    lines = []
    for first, cont, words in paragraphs(text, wrapped_at):
        if not words:
            lines.append("")
            continue
        lines += textwrap.wrap(words, width, initial_indent=first, subsequent_indent=cont, break_on_hyphens=False) or [
            first
        ]
    return "\n".join(lines)

"""The two kinds of user-facing errors gradwatch raises.

Both carry a one-line message that names the parameter, the bad value and what is allowed, so the CLI can
print it as is (no traceback) and exit with the conventional code: 2 for a usage error, 1 for a data error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """A parameter has a value that is not allowed (CLI exit code 2)."""

    exit_code = 2

    def __init__(self, param: str, value: Any, allowed: str):
        self.param, self.value, self.allowed = param, value, allowed
        super().__init__(f"{param}={value!r} is not allowed: {allowed}")

    def cli_message(self) -> str:
        """The same message with the parameter spelled as its command-line flag."""
        value = self.value if isinstance(self.value, (int, float)) else repr(self.value)
        return f"--{self.param.replace('_', '-')} {value} is not allowed: {self.allowed}"


class DataError(RuntimeError):
    """Data could not be found, read or verified (CLI exit code 1)."""

    exit_code = 1

    def cli_message(self) -> str:
        return str(self)


class PathError(DataError):
    """A file or directory given by a parameter cannot be used: missing, unreadable, read-only, a directory where
    a file is expected (CLI exit code 1). The message names the parameter, the path and the problem."""

    def __init__(self, param: str, path: Any, problem: str):
        self.param, self.path, self.problem = param, str(path), problem
        super().__init__(f"{param}={self.path!r}: {problem}")

    def cli_message(self) -> str:
        return f"--{self.param.replace('_', '-')} {self.path}: {self.problem}"


def check_choice(param: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise a :class:`ConfigError` listing them."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(param, value, "expected one of " + ", ".join(choices))
    return value

"""Validated configuration objects: pydantic models whose errors are one-line :class:`ConfigError`s.

Unknown keys are errors; every field is checked on creation and on assignment. A failed check names the
parameter, the value given and what is allowed (design rule 6 and 7).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from gradwatch.errors import ConfigError

_MISSING = object()


_BOUNDS = {
    "greater_than_equal": ("ge", "≥"),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "≤"),
    "less_than": ("lt", "<"),
}


def _explain(err: ErrorDetails) -> str:
    kind, msg, ctx = err.get("type", ""), err.get("msg", "invalid value"), err.get("ctx", {})
    if kind == "finite_number":
        return "must be a finite number (not NaN or infinite)"
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        return f"must be {sign} {ctx.get(key)}"
    # pydantic prefixes messages from our validators with "Value error, "
    return msg.removeprefix("Value error, ")


FINITE = ConfigDict(allow_inf_nan=False)  # NaN and ±inf are errors in every float field


class StrictModel(BaseModel):
    """Base class for gradwatch configurations (pydantic v2, ``extra="forbid"``).

    Subclasses whose floats must be finite say ``model_config = FINITE`` (merged with this one)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            original = err.get("ctx", {}).get("error")
            if isinstance(original, ConfigError):  # raised by one of our validators: already one line
                raise original from None
            param = ".".join(str(p) for p in err.get("loc", ())) or "config"
            value = err.get("input", _MISSING)
            if isinstance(value, dict) and param in value:
                value = value[param]
            if err.get("type") == "extra_forbidden":
                allowed = "unknown parameter; known ones are " + ", ".join(type(self).model_fields)
            else:
                allowed = _explain(err)
            raise ConfigError(param, None if value is _MISSING else value, allowed) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return self.model_dump(mode="json")

"""The shape of every error answer, declared in the OpenAPI schema so that clients (and the schema fuzzing in
the test suite) can rely on it: ``{"detail": {"parameter", "value", "allowed", "message"}}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    parameter: str = Field(description="the parameter, field or header that was refused")
    value: Any = Field(None, description="its value (shortened)")
    allowed: str = Field(description="what is allowed instead")
    message: str = Field(description="one line for people")


class ErrorAnswer(BaseModel):
    detail: ErrorDetail


_MEANING = {
    400: "a Host this server does not answer",
    403: "a foreign Origin",
    404: "no such id",
    409: "in a state that forbids it",
    413: "the body is too large",
    422: "an invalid parameter or body",
    429: "too many runs queued, or for this client",
    500: "a bug of the server (still JSON)",
    503: "the run store cannot be read at the moment",
}
ALWAYS = (400, 422, 500, 503)  # any request: the Host check, parameter validation, a bug


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: these status codes (and :data:`ALWAYS`) answer an :class:`ErrorAnswer`."""
    return {c: {"model": ErrorAnswer, "description": _MEANING[c]} for c in sorted({*ALWAYS, *codes})}

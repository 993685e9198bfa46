"""Validation errors of the event contract."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.fields import NON_BLANK_PATTERN


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule: the attribute or data field (`time`, `data.score`) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidEvent(Exception):
    """An event that breaks the contract; `errors` names every broken field."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "; ".join(str(error) for error in self.errors)


WHOLE_EVENT: Final = "event"
"""Field name used for errors about the event as a whole (not JSON, too large, ...)."""

_FIXED_MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "missing": "required",
        "string_type": "must be a string",
        "int_type": "must be an integer",
        "int_from_float": "must be an integer",
        "float_type": "must be a number",
        "bool_type": "must be a boolean",
        "finite_number": "must be a finite number",
        "dict_type": "must be a JSON object",
        "model_type": "must be a JSON object",
        "model_attributes_type": "must be a JSON object",
        "list_type": "must be a JSON array",
        "invalid-json-value": "must be a JSON value",
        "string_too_short": "must not be empty",
    }
)
_QUOTED: Final = re.compile(r"'([^']*)'")


def _one_of(expected: str) -> str:
    quoted = _QUOTED.findall(expected)
    values = quoted or [part for part in re.split(r", | or ", expected) if part]
    if len(values) == 1:
        return f"must be {values[0]}"
    return "must be one of " + ", ".join(values)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[kind]
    if kind in ("enum", "literal_error"):
        return _one_of(str(ctx.get("expected", "")))
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NON_BLANK_PATTERN:
        return "must not be empty or blank"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}"
    message = error["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    return message[:1].lower() + message[1:]


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Translate a pydantic error into contract field errors (input values never echoed)."""
    out: list[FieldError] = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"])
        field = f"{prefix}.{path}" if prefix and path else (prefix or path or WHOLE_EVENT)
        out.append(FieldError(field, _message(error)))
    return out

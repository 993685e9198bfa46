"""Annotated field types shared by the envelope and the data models.

Each type validates in Python and carries the JSON Schema that says the same, so the
generated schema files agree with :func:`schemas.parse_event`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Final

from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

# RFC 3339 section 5.6 `date-time`: "T" and "Z" are case-insensitive; the offset is mandatory.
RFC3339_PATTERN: Final = (
    r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt]"
    r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)
# RFC 3986 URI-reference: a scheme, or a relative reference whose first segment has no ":".
URI_REFERENCE_PATTERN: Final = (
    r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:|(?=[^:/?#]*(?:[/?#]|$)))"
    r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$"
)
NON_BLANK_PATTERN: Final = r"\S"
EARLIEST_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""No event time lies before this instant (contract section 7)."""
LATEST_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)
"""Nor at or after this one: every receiving clock before 2100 refuses it as being ahead, and the
bound keeps date arithmetic (deadlines, windows, conversions to UTC) far from year 9999."""
TIME_RANGE_PATTERN: Final = RFC3339_PATTERN.replace(r"^\d{4}-", r"^20\d{2}-", 1)
"""The JSON Schema's pattern: RFC 3339 with a year 2000-2099 (the instant is checked in code)."""
TIME_RANGE_MESSAGE: Final = "must lie on or after 2000-01-01T00:00:00Z and before 2100-01-01T00:00:00Z"

_NO_OFFSET: Final = "has no UTC offset (add Z or e.g. +04:00)"
_RFC3339: Final = re.compile(RFC3339_PATTERN)
_LOCAL_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?")
_URI_REFERENCE: Final = re.compile(URI_REFERENCE_PATTERN)


def parse_timestamp(value: object) -> datetime:
    """An aware datetime from an RFC 3339 string (or an aware datetime), offset kept."""
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            raise PydanticCustomError("timestamp_offset", _NO_OFFSET)
        if offset % timedelta(minutes=1):
            raise PydanticCustomError("timestamp_offset", "UTC offset must be whole minutes")
        if not isinstance(value.tzinfo, timezone):
            value = value.replace(tzinfo=timezone(offset))
        return _in_range(value)
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", "must be an RFC 3339 timestamp string")
    if _RFC3339.fullmatch(value) is None:
        if _LOCAL_TIME.fullmatch(value):
            raise PydanticCustomError("timestamp_offset", _NO_OFFSET)
        raise PydanticCustomError("timestamp_format", "must be an RFC 3339 timestamp like 2025-03-01T09:30:00+04:00")
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise PydanticCustomError("timestamp_value", "is not a valid calendar date") from None
    return _in_range(parsed)


def timestamp_or_none(value: object) -> datetime | None:
    """`parse_timestamp(value)` for RFC 3339 text, or None where that raises (no error built):
    the fast path's parser, with the same rules and result."""
    if type(value) is not str or _RFC3339.fullmatch(value) is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    if EARLIEST_TIME.year < parsed.year < LATEST_TIME.year - 1:
        return parsed  # a whole year from either bound: inside whatever the offset
    try:
        return _in_range(parsed)
    except PydanticCustomError:
        return None


def _in_range(value: datetime) -> datetime:
    """`value` when EARLIEST_TIME <= value < LATEST_TIME; else a clear error (never an overflow)."""
    if value.year < EARLIEST_TIME.year - 1 or value.year > LATEST_TIME.year:
        # far outside: converting to UTC could overflow (0001-01-01T00:00+01:00); a local year
        # next to a bound (1999-12-31T20:30-03:30 is 2000-01-01T00:00Z) is compared exactly
        inside = False
    else:
        inside = EARLIEST_TIME <= value < LATEST_TIME
    if not inside:
        raise PydanticCustomError("timestamp_range", TIME_RANGE_MESSAGE)
    return value


def format_timestamp(value: datetime) -> str:
    """RFC 3339 text of an aware datetime, with its own offset (`Z` for UTC)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def format_number(value: float) -> int | float:
    """Whole numbers as JSON integers (35 rather than 35.0), others unchanged."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def parse_uri_reference(value: object) -> str:
    """A non-empty RFC 3986 URI-reference."""
    if not isinstance(value, str):
        raise PydanticCustomError("uri_type", "must be a string")
    if not value:
        raise PydanticCustomError("uri_empty", "must not be empty")
    if _URI_REFERENCE.fullmatch(value) is None:
        raise PydanticCustomError("uri_format", "must be a URI-reference like /channels/pbx/main")
    return value


Timestamp = Annotated[
    datetime,
    PlainValidator(parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIME_RANGE_PATTERN}),
]
"""RFC 3339 date-time with a mandatory offset, between 2000 and 2100; kept as an aware datetime."""

UriReference = Annotated[
    str,
    PlainValidator(parse_uri_reference),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri-reference",
            "minLength": 1,
            "pattern": URI_REFERENCE_PATTERN,
        }
    ),
]
"""Non-empty RFC 3986 URI-reference."""

Text = Annotated[str, Strict()]
"""Any string, empty included."""

Name = Annotated[str, Strict(), StringConstraints(pattern=NON_BLANK_PATTERN)]
"""A string with at least one non-blank character (ids, queues, categories, ...)."""

_AS_JSON_NUMBER: Final = PlainSerializer(format_number, return_type=int | float, when_used="json")

Seconds = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False), _AS_JSON_NUMBER]
"""A finite, non-negative number of seconds."""

Number = Annotated[float, Strict(), Field(allow_inf_nan=False), _AS_JSON_NUMBER]
"""A finite number."""

Count = Annotated[int, Strict(), Field(ge=0)]
"""A non-negative integer."""

"""Turning raw JSON into validated events and back: the package's entry points."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from schemas.base import EventData
from schemas.envelope import CONTEXT_ATTRIBUTES, Attributes, Event, extension_errors, version_error
from schemas.errors import WHOLE_EVENT, FieldError, InvalidEvent, field_errors
from schemas.fast import fast_decode, fast_parse
from schemas.registry import DATA_MODELS, DEFAULT_VERSION, dataschema_uri, parse_dataschema
from schemas.values import DATACONTENTTYPE, EVENT_TYPES, MAX_EVENT_BYTES, SPECVERSION


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_ATTRIBUTES: Final = TypeAdapter(Attributes)
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
"""Standard JSON only: NaN and Infinity are refused."""


def _whole(message: str) -> InvalidEvent:
    return InvalidEvent((FieldError(WHOLE_EVENT, message),))


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def parse_event(raw: object) -> Event:
    """Validate a decoded JSON value as an event of the contract; raises InvalidEvent.

    A valid event is accepted by one msgspec pass (`schemas.fast`); only an event that pass
    refuses is validated by pydantic, which accepts it or names every broken rule."""
    if isinstance(raw, dict):
        event = fast_parse(raw)
        if event is not None:
            return event
    return explain_event(raw)


def explain_event(raw: object) -> Event:
    """`parse_event` by the pydantic models alone (the detailed path; the reference the fast
    path is tested against); raises InvalidEvent naming every broken rule."""
    if not isinstance(raw, dict):
        raise _whole(f"must be a JSON object, not {_json_kind(raw)}")
    valid = _valid_event(raw)
    return valid if valid is not None else _explained(raw)


def _valid_event(raw: dict[str, Any]) -> Event | None:
    """The event when `raw` is valid, in one validation of the envelope (the common case);
    None when anything is off, for `_explained` to name every problem."""
    if raw.get("datacontenttype", "") is None or raw.get("dataschema", "") is None:
        return None  # null is accepted by `Event`'s defaults but not by the contract
    fields, extensions, problems = _split(raw)
    if problems:
        return None
    try:
        data = _parse_data(raw, [])
        if data is None:
            return None
        return Event.model_validate({**fields, "data": data, "extensions": extensions})
    except ValidationError:
        return None


def _explained(raw: dict[str, Any]) -> Event:
    """Validate attribute by attribute, collecting every error (the slow path of `parse_event`)."""
    attributes, extensions, errors = _split(raw)
    try:
        valid = _ATTRIBUTES.validate_python(attributes)
    except ValidationError as exc:
        errors[:0] = field_errors(exc)
        valid = None
    data = _parse_data(raw, errors)
    if errors or valid is None or data is None:
        raise InvalidEvent(errors)
    return Event.model_construct(data=data, extensions=extensions, **valid)


def _split(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[FieldError]]:
    """The context attributes, the valid extension attributes, and what is wrong with the others."""
    attributes: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    problems: list[FieldError] = []
    for name, value in raw.items():
        if name in CONTEXT_ATTRIBUTES:
            attributes[name] = value
        elif name != "data":
            problem = extension_errors(name, value)
            if problem is None:
                extensions[name] = value
            else:
                problems.append(problem)
    return attributes, extensions, problems


def _parse_data(raw: Mapping[str, Any], errors: list[FieldError]) -> EventData | None:
    """The typed `data` when `type` and `dataschema` name a known model; errors appended.

    A bad `type` or a malformed `dataschema` is reported by the attribute check already.
    """
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        return None
    dataschema = raw.get("dataschema")
    version = DEFAULT_VERSION
    if dataschema is not None:
        named = parse_dataschema(dataschema) if isinstance(dataschema, str) else None
        if named is None:
            return None
        problem = version_error(event_type, dataschema)
        if problem is not None:
            errors.append(problem)
            return None
        version = named[1]
    if "data" not in raw:
        errors.append(FieldError("data", "required"))
        return None
    try:
        return DATA_MODELS[(event_type, version)].model_validate(raw["data"])
    except ValidationError as exc:
        errors.extend(field_errors(exc, prefix="data"))
        return None


def decode_event(value: bytes, max_bytes: int = MAX_EVENT_BYTES) -> Event:
    """Validate a Kafka message value or HTTP body (UTF-8 JSON); raises InvalidEvent.

    Fast accept, detailed reject: see `parse_event`."""
    text = _utf8_text(value, max_bytes)
    event = fast_decode(text)
    return event if event is not None else _explain_text(text)


def explain_decode(value: bytes, max_bytes: int = MAX_EVENT_BYTES) -> Event:
    """`decode_event` by the pydantic models alone (the reference of the fast path)."""
    return _explain_text(_utf8_text(value, max_bytes))


def _utf8_text(value: bytes, max_bytes: int) -> str:
    """The text of a message value within the size limit; raises InvalidEvent."""
    if not isinstance(value, bytes | bytearray | memoryview):
        kind = "nothing" if value is None else type(value).__name__
        raise _whole(f"must be UTF-8 JSON bytes, got {kind}")
    size = len(value)
    if size > max_bytes:
        raise _whole(f"too large: {size} bytes (limit {max_bytes})")
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _whole(f"not valid UTF-8 (byte {exc.start})") from None
    return text


def _explain_text(text: str) -> Event:
    try:
        raw = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _whole(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # NaN/Infinity, or nested too deeply
        raise _whole(f"not valid JSON: {exc}") from None
    return explain_event(raw)


def new_event(
    type: str,  # noqa: A002 - the CloudEvents attribute name
    subject: str,
    time: datetime | str,
    data: Mapping[str, Any] | EventData,
    source: str,
    id: str | None = None,  # noqa: A002 - the CloudEvents attribute name
) -> Event:
    """Build and validate an event at the current schema version of its type."""
    raw: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": str(uuid.uuid4()) if id is None else id,
        "source": source,
        "type": type,
        "time": time,
        "subject": subject,
        "datacontenttype": DATACONTENTTYPE,
        "data": data.to_dict() if isinstance(data, EventData) else data,
    }
    if isinstance(type, str) and type in EVENT_TYPES:
        raw["dataschema"] = dataschema_uri(type)
    return parse_event(raw)

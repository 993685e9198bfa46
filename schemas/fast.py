"""Fast accept: one msgspec pass decodes and validates an event; None sends it to pydantic.

`fast_decode` (JSON text) and `fast_parse` (a decoded mapping) return the very `Event` the
pydantic path of `schemas.parsing` would return (same fields, same values, same set fields),
or None when the event breaks a rule or names a schema version other than 1 (left to pydantic);
the caller then runs the pydantic path, which accepts it or names every broken rule. A property
test (tests/unit/test_schemas_fast.py) holds the two paths equal.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple, cast

import msgspec
from pydantic import BaseModel
from pydantic_core import PydanticCustomError

from schemas.envelope import CONTEXT_ATTRIBUTES, Event, extension_errors
from schemas.fast_types import ANY_ENVELOPE, ENVELOPE_TYPES, ENVELOPES, FAST_TYPES, NON_BLANK_FAST, UNSET, Twin
from schemas.fields import parse_timestamp, parse_uri_reference, timestamp_or_none
from schemas.registry import DEFAULT_VERSION, parse_dataschema

_DECODER: Final = msgspec.json.Decoder(ANY_ENVELOPE)
_ANY_JSON: Final = msgspec.json.Decoder()
_ENVELOPE_NAMES: Final = CONTEXT_ATTRIBUTES | {"data"}
_NON_BLANK: Final = re.compile(NON_BLANK_FAST)
_EXTENSION_TYPES: Final = (str, bool, int)
_SCALAR_TYPES: Final = (str, bool, int, float, type(None))
_set = object.__setattr__


class _Refused(ValueError):
    """A rule checked after msgspec failed: the pydantic path decides."""


def fast_decode(text: str | bytes) -> Event | None:
    """The event in UTF-8 JSON `text` when it is valid, else None (the pydantic path decides).

    `text` must already be known to be UTF-8 (a `str`, or bytes checked by the caller)."""
    try:
        envelope = _DECODER.decode(text)
    except msgspec.DecodeError:
        return _with_extras(text)  # unknown names (extensions, extra data fields) or invalid
    try:
        return cast(Event, _event(envelope, {}, None))
    except (_Refused, PydanticCustomError):
        return None


class CheckedEvent(NamedTuple):
    """An event that passed every rule of the contract, without the pydantic objects (for
    readers that only need its fields: `check_event`)."""

    type: str
    id: str
    source: str
    subject: str
    time: datetime
    data: dict[str, Any]
    """The `data` fields sent, checked (times as aware datetimes, enum values as `StrEnum`)."""


def check_event(text: str | bytes) -> CheckedEvent | None:
    """What `fast_decode` checks, without building the `Event`: the fields of a valid event that
    has no extension attribute and no unknown `data` field; else None (`decode_event` decides)."""
    try:
        envelope = _DECODER.decode(text)
        checked: CheckedEvent = _event(envelope, {}, None, build=False)
    except (msgspec.DecodeError, _Refused, PydanticCustomError):
        return None
    return checked


def fast_parse(raw: Mapping[str, Any]) -> Event | None:
    """The event a decoded JSON object describes when it is valid, else None."""
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in ENVELOPES:
        return None
    envelope_type = ENVELOPES[event_type]
    if not _unicode_only(raw):
        return None  # a lone surrogate (from a JSON escape): the detailed path names the field
    try:
        known, extensions, data_extras = _split(raw, FAST_TYPES[event_type])
        envelope = msgspec.convert(known, envelope_type)
        return cast(Event, _event(envelope, extensions, data_extras))
    except (_Refused, PydanticCustomError, msgspec.ValidationError):
        return None


def _unicode_only(value: object) -> bool:
    """False when a string in `value` holds a lone surrogate (JSON text can escape one; UTF-8 cannot
    carry it, and the contract refuses it)."""
    if isinstance(value, str):
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_unicode_only(k) and _unicode_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_unicode_only(v) for v in value)
    return True


def _with_extras(text: str | bytes) -> Event | None:
    try:
        raw = _ANY_JSON.decode(text)
    except msgspec.DecodeError:
        return None
    return fast_parse(raw) if isinstance(raw, dict) else None


def _split(raw: Mapping[str, Any], twin: Twin) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The envelope without extension attributes and without unknown `data` fields; the
    extensions (each checked); the data's unknown fields (nested ones inside them)."""
    known: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _ENVELOPE_NAMES:
            known[name] = value
        elif type(value) in _EXTENSION_TYPES and extension_errors(name, value) is None:
            extensions[name] = value
        else:
            raise _Refused(name)
    data = known.get("data")
    if not isinstance(data, dict):
        raise _Refused("data")
    known["data"], extras = _split_data(data, twin)
    return known, extensions, extras


def _split_data(data: dict[str, Any], twin: Twin) -> tuple[dict[str, Any], dict[str, Any]]:
    """(known fields, unknown fields); a nested model's unknown fields go under `(name,)`."""
    known: dict[str, Any] = {}
    extras: dict[Any, Any] = {}
    for name, value in data.items():
        if name not in twin.names:
            if not _plain_json(value):
                raise _Refused(name)
            extras[name] = value
        elif name in twin.nested and isinstance(value, dict):
            known[name], inner = _split_data(value, twin.nested[name])
            extras[(name,)] = inner
        else:
            known[name] = value
    return known, extras


def _plain_json(value: object) -> bool:
    """A value of a JSON document as Python's decoders build it (what pydantic keeps as is)."""
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and _plain_json(v) for k, v in value.items())  # type: ignore[attr-defined]
    if kind is list:
        return all(_plain_json(item) for item in value)  # type: ignore[attr-defined]
    return kind in _SCALAR_TYPES


def _event(envelope: Any, extensions: dict[str, Any], data_extras: dict[str, Any] | None, build: bool = True) -> Any:
    event_type = ENVELOPE_TYPES[type(envelope)]
    if not (_non_blank(envelope.id) and _non_blank(envelope.subject)):
        raise _Refused("id or subject")
    values: dict[str, Any] = {
        "specversion": envelope.specversion,
        "id": envelope.id,
        "source": _uri(envelope.source),
        "type": event_type,
        "time": _timestamp(envelope.time),
        "subject": envelope.subject,
        "datacontenttype": None,
        "dataschema": None,
    }
    present = {"specversion", "id", "source", "type", "time", "subject", "data", "extensions"}
    if envelope.datacontenttype is not UNSET:
        values["datacontenttype"] = envelope.datacontenttype
        present.add("datacontenttype")
    if envelope.dataschema is not UNSET:
        if parse_dataschema(envelope.dataschema) != (event_type, DEFAULT_VERSION):
            raise _Refused("dataschema")  # malformed, another type, or another version
        values["dataschema"] = envelope.dataschema
        present.add("dataschema")
    values["data"] = _model(FAST_TYPES[event_type], envelope.data, data_extras or {}, build)
    values["extensions"] = extensions
    if not build:
        return CheckedEvent(event_type, envelope.id, values["source"], envelope.subject, values["time"], values["data"])
    return _construct(Event, values, present, None)


def _model(twin: Twin, struct: Any, extras: dict[Any, Any], build: bool = True) -> Any:
    """The pydantic model `twin.model.model_validate` would return for the same input (with
    `build` False: the checked values of the fields sent, nested models as dicts)."""
    if twin.check is not None and not twin.check(struct):
        raise _Refused(twin.model.__name__)
    values = msgspec.structs.asdict(struct)
    present = set(values)
    for name, default in twin.defaults.items():
        if values[name] is UNSET:
            values[name] = default
            present.discard(name)
    for name in twin.names_checked:
        value = values[name]
        if value is not None and not _non_blank(value):
            raise _Refused(name)
    for name, nullable in twin.timestamps:
        if not (nullable and values[name] is None) and name in present:
            values[name] = _timestamp(values[name])
    for name, allowed in twin.literals.items():
        if name in present:
            values[name] = _literal(values[name], allowed)
    for name, inner in twin.nested.items():
        if values[name] is not None and name in present:
            values[name] = _model(inner, values[name], extras.pop((name,), {}), build)
    present.update(extras)
    if not build:
        return {name: values[name] for name in twin.names if name in present} | extras
    return _construct(twin.model, values, present, extras)


def _non_blank(value: str) -> bool:
    """`Name`'s rule: a first character that is not blank decides at once (Python's blanks
    include pydantic's), else the exact pattern."""
    return bool(value) and (not value[0].isspace() or _NON_BLANK.search(value) is not None)


def _timestamp(value: object) -> datetime:
    """The contract's timestamp rules (`fields.parse_timestamp`, which also takes a datetime)."""
    parsed = timestamp_or_none(value)
    return parse_timestamp(value) if parsed is None else parsed


def _literal(value: Any, allowed: tuple[Any, ...]) -> Any:
    for choice in allowed:
        if value == choice:
            return choice
    raise _Refused("literal")


@functools.lru_cache(maxsize=1024)
def _uri(value: str) -> str:
    """`source`, checked by the contract's own function (few distinct values: remembered)."""
    return parse_uri_reference(value)


def _construct(model: type[BaseModel], values: dict[str, Any], present: set[str], extra: dict[str, Any] | None) -> Any:
    """What `model.model_construct` builds, without its per-call overhead: the values are valid."""
    instance = model.__new__(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", present)
    _set(instance, "__pydantic_extra__", extra)
    _set(instance, "__pydantic_private__", None)
    return instance

"""Decoding Kafka messages for the database sink.

Input events are read by `schemas.fast.check_event`: one msgspec pass checks every rule of the
contract without building pydantic objects (an event with extension attributes or unknown
`data` fields goes through `schemas.decode_event`). SLA outcomes (about one per
four input events) are read on a fast path too, which checks every attribute and field of
the contract and returns the `OutcomeRecord` the full validation would give. A message that
does not pass these checks goes through the full validation of `schemas.decode_event`, which
either accepts it or raises `InvalidEvent` with the reason. KPI snapshots (few messages)
always get the full validation.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticCustomError

from schemas import (
    CHANNELS,
    DATACONTENTTYPE,
    INPUT_EVENT_TYPES,
    KINDS,
    PRIORITIES,
    SLA_TARGETS,
    SPECVERSION,
    Event,
    FieldError,
    InvalidEvent,
    SlaOutcomeData,
    decode_event,
)
from schemas.envelope import CONTEXT_ATTRIBUTES
from schemas.fast import check_event
from schemas.fields import parse_timestamp, parse_uri_reference
from schemas.registry import DATA_MODELS, DEFAULT_VERSION, parse_dataschema
from schemas.ticket_state import BadTicketState
from schemas.ticket_state import decode_ticket_state as read_ticket_state
from sinks.db.records import KPI_TYPE, SLA_TYPES, BadRecord, EventRecord, OutcomeRecord, TicketState

_OUTCOME_FIELDS = frozenset(SlaOutcomeData.model_fields)
_OUTCOME_SCHEMAS = frozenset(
    named
    for named, model in DATA_MODELS.items()
    if named[0] in SLA_TYPES and issubclass(model, SlaOutcomeData) and model.model_fields.keys() == _OUTCOME_FIELDS
)
"""(type, version) of the SLA outcome schemas the fast path reads."""
_ENVELOPE = CONTEXT_ATTRIBUTES | {"data"}
_CHANNELS, _KINDS, _PRIORITIES, _TARGETS = (frozenset(v) for v in (CHANNELS, KINDS, PRIORITIES, SLA_TARGETS))


class _Unusual(ValueError):
    """The message left the fast path: the full validation decides."""


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Unusual
    return value


def _json_object(raw: bytes) -> tuple[str, dict[str, Any]]:
    try:
        text = raw.decode("utf-8")
        body = json.loads(text)
    except ValueError:
        raise _Unusual from None
    if not isinstance(body, dict) or body.get("specversion") != SPECVERSION:
        raise _Unusual
    return text, body


def decode_input(raw: bytes) -> EventRecord:
    """An input event (`tawasul.events` message value); raises `InvalidEvent` when invalid."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    checked = None if text is None else check_event(text)
    if text is not None and checked is not None and checked.type in INPUT_EVENT_TYPES:
        return EventRecord(
            id=checked.id,
            type=checked.type,
            subject=checked.subject,
            time=checked.time,
            source=checked.source,
            data=checked.data,
            payload=text,
        )
    event = decode_event(raw)
    if event.type not in INPUT_EVENT_TYPES:
        raise InvalidEvent((FieldError(field="type", message="not an input event type"),))
    record = EventRecord.from_event(event)
    return record if text is None else dataclasses.replace(record, payload=text)  # the text as it travelled


def _one_of(value: object, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _Unusual
    return value


def _timestamp(value: object) -> Any:
    try:
        return parse_timestamp(value)
    except PydanticCustomError:
        raise _Unusual from None


def _fast_outcome(raw: bytes) -> OutcomeRecord:
    """An `sla.*` event that passes every check of the contract, read without pydantic."""
    _text, body = _json_object(raw)
    kind, data = body.get("type"), body.get("data")
    if not isinstance(kind, str) or kind not in SLA_TYPES or not isinstance(data, dict):
        raise _Unusual
    if not _ENVELOPE.issuperset(body):
        raise _Unusual
    if body.get("datacontenttype", DATACONTENTTYPE) != DATACONTENTTYPE:
        raise _Unusual
    if not _is_outcome_model(kind, body):
        raise _Unusual
    sha = data.get("policies_sha256")
    if data.keys() - {"policies_sha256"} != _OUTCOME_FIELDS or (sha is not None and not isinstance(sha, str)):
        raise _Unusual
    try:
        parse_uri_reference(body.get("source"))
    except PydanticCustomError:
        raise _Unusual from None
    _name(body.get("subject"))
    return OutcomeRecord(
        id=_name(body.get("id")),
        type=kind,
        time=_timestamp(body.get("time")),
        ticket_id=_name(data["ticket_id"]),
        target=_one_of(data["target"], _TARGETS),
        policy=_name(data["policy"]),
        deadline=_timestamp(data["deadline"]),
        channel=_one_of(data["channel"], _CHANNELS),
        kind=_one_of(data["kind"], _KINDS),
        category=_name(data["category"]),
        priority=_one_of(data["priority"], _PRIORITIES),
        policies_sha256=sha,
    )


def _is_outcome_model(kind: str, body: Mapping[str, Any]) -> bool:
    """True when the schema version the event names (none: the default) is one whose data
    has exactly the fields of `SlaOutcomeData`."""
    if "dataschema" not in body:
        return (kind, DEFAULT_VERSION) in _OUTCOME_SCHEMAS
    dataschema = body["dataschema"]
    named = parse_dataschema(dataschema) if isinstance(dataschema, str) else None
    return named is not None and named[0] == kind and named in _OUTCOME_SCHEMAS


def decode_pipeline_event(raw: bytes) -> OutcomeRecord | Event:
    """An SLA outcome (as `OutcomeRecord`) or a KPI snapshot event, checked against the
    contract; raises `InvalidEvent`."""
    try:
        return _fast_outcome(raw)
    except _Unusual:
        event = decode_event(raw)
    if event.type in SLA_TYPES:
        return OutcomeRecord.from_event(event)
    if event.type != KPI_TYPE:
        raise InvalidEvent((FieldError(field="type", message="not an SLA outcome or KPI snapshot"),))
    return event


def decode_ticket_state(raw: bytes) -> TicketState:
    """A `tawasul.tickets.state` message value; raises `BadRecord` (or `UnicodeDecodeError`)
    when malformed."""
    try:
        message = read_ticket_state(raw.decode("utf-8"))
    except BadTicketState as exc:
        raise BadRecord(str(exc)) from None
    return TicketState.from_message(message)

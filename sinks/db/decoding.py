"""Decoding Kafka messages for the database sink.

Input events were validated at intake, so the sink reads them on a fast path: plain JSON,
with checks of the envelope and of the `data` fields it stores. A message that does not pass
them goes through the full validation of `schemas.decode_event`, which either accepts it or
raises `InvalidEvent` with the reason. SLA outcomes and KPI snapshots (few messages) always
get the full validation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticCustomError

from schemas import CHANNELS, EVENT_TYPES, Event, FieldError, InvalidEvent, decode_event
from schemas.fields import parse_timestamp
from sinks.db.contacts import SPEC_BY_TYPE
from sinks.db.records import KPI_TYPE, SLA_TYPES, EventRecord, TicketState

INPUT_TYPES = frozenset(EVENT_TYPES - SLA_TYPES - {KPI_TYPE})


class _Unusual(ValueError):
    """The message left the fast path: the full validation decides."""


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Unusual
    return value


def _optional_name(value: object) -> None:
    if value is not None:
        _name(value)


def _check_seconds(value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unusual
    try:
        if not math.isfinite(value) or value < 0:
            raise _Unusual
    except OverflowError:
        raise _Unusual from None


def _check_contact(kind: str, data: Mapping[str, Any]) -> None:
    _time_column, copied = SPEC_BY_TYPE[kind].fields[kind]
    for name in copied:
        if name == "wrap_up_seconds":
            _check_seconds(data.get(name))
        else:
            _optional_name(data.get(name))


def _check_survey(data: Mapping[str, Any]) -> None:
    score, scale = data.get("score"), data.get("scale", 5)
    if data.get("channel") not in CHANNELS or scale not in (3, 5) or isinstance(scale, bool):
        raise _Unusual
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= scale:
        raise _Unusual


def _fast(raw: bytes) -> EventRecord:
    try:
        text = raw.decode("utf-8")
        body = json.loads(text)
    except ValueError:
        raise _Unusual from None
    if not isinstance(body, dict) or body.get("specversion") != "1.0":
        raise _Unusual
    kind, data = body.get("type"), body.get("data")
    if kind not in INPUT_TYPES or not isinstance(data, dict):
        raise _Unusual
    try:
        time = parse_timestamp(body.get("time"))
    except PydanticCustomError:
        raise _Unusual from None
    if kind in SPEC_BY_TYPE:
        _check_contact(kind, data)
    elif kind == "survey.submitted":
        _check_survey(data)
    return EventRecord(id=_name(body.get("id")), type=kind, subject=_name(body.get("subject")), time=time,
                       source=_name(body.get("source")), data=data, payload=text)


def decode_input(raw: bytes) -> EventRecord:
    """An input event (`tawasul.events` message value); raises `InvalidEvent` when invalid."""
    try:
        return _fast(raw)
    except _Unusual:
        event = decode_event(raw)
    if event.type not in INPUT_TYPES:
        raise InvalidEvent((FieldError(field="type", message="not an input event type"),))
    return EventRecord.from_event(event)


def decode_pipeline_event(raw: bytes) -> Event:
    """An SLA outcome or KPI snapshot event, fully validated; raises `InvalidEvent`."""
    event = decode_event(raw)
    if event.type not in SLA_TYPES and event.type != KPI_TYPE:
        raise InvalidEvent((FieldError(field="type", message="not an SLA outcome or KPI snapshot"),))
    return event


def decode_ticket_state(raw: bytes) -> TicketState:
    """A `tawasul.tickets.state` message value; raises `BadRecord` or `ValueError` when malformed."""
    return TicketState.from_dict(json.loads(raw.decode("utf-8")))

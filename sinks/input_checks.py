"""What the database sink accepts from each of its topics, and how it decodes it.

Input events reach `tawasul.events` through intake, which validated them; one written straight
to the topic, past intake, is checked here again (`decode_clean_input`) so that it is never
stored when it breaks the contract, is too large or holds personal data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from schemas import (
    CHANNELS,
    KINDS,
    MAX_EVENT_BYTES,
    PRIORITIES,
    FieldError,
    InvalidEvent,
    dataschema_uri,
    parse_event,
)
from schemas.errors import WHOLE_EVENT
from sinks.db.decoding import decode_input, decode_pipeline_event, decode_ticket_state
from sinks.db.policy_books import decode_policy_book
from sinks.db.records import EventRecord
from sinks.db.writer import Record
from tawasul.infra.privacy import might_hold_personal_data, personal_data_fields
from tawasul.infra.topics import EVENTS, POLICIES, TICKET_STATE, TopicSpec

_UNCHECKED_BY_FAST_PATH = ("ticket.",)
"""Input types whose `data` the sink's fast decoder does not check (it copies none of it)."""
_CHANNELS, _KINDS, _PRIORITIES = frozenset(CHANNELS), frozenset(KINDS), frozenset(PRIORITIES)


def _one_of(value: object, allowed: frozenset[str]) -> bool:
    return isinstance(value, str) and value in allowed


def _name(value: object, optional: bool = False) -> bool:
    return (optional and value is None) or (isinstance(value, str) and not value.isspace() and value != "")


def _ticket_data_fits(kind: str, data: Mapping[str, Any]) -> bool:
    """True when a ticket event's `data` (version 1) has the fields the contract requires, of
    their types, without the cost of the full validation; False leaves it to `parse_event`."""
    get = data.get
    if kind == "ticket.opened":
        location = get("location")
        return (
            _one_of(get("channel"), _CHANNELS)
            and _one_of(get("kind"), _KINDS)
            and _one_of(get("priority"), _PRIORITIES)
            and _name(get("category"))
            and _name(get("department"), True)
            and _name(get("customer_ref"), True)
            and (
                location is None
                or (
                    isinstance(location, dict)
                    and _name(location.get("mosque_id"), True)
                    and _name(location.get("area"), True)
                )
            )
        )
    if kind == "ticket.assigned":
        return _name(get("team"), True) and _name(get("agent"), True)
    if kind == "ticket.paused":
        return _name(get("reason"))
    if kind == "ticket.priority_changed":
        return _one_of(get("priority"), _PRIORITIES)
    if kind == "ticket.resolved":
        return get("resolution") is None or isinstance(get("resolution"), str)
    return True


def decode_clean_input(raw: bytes) -> EventRecord:
    """A valid input event within intake's size limit that holds no personal data
    (`decode_input` and then the checks of intake): an event written straight to the topic,
    past intake, that breaks the contract, is larger than `MAX_EVENT_BYTES` or holds a phone
    number, e-mail address or Emirates ID is refused with `InvalidEvent` naming the problem,
    never stored."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent((FieldError(WHOLE_EVENT, f"too large: {len(raw)} bytes (limit {MAX_EVENT_BYTES})"),))
    record = decode_input(raw)
    if record.type.startswith(_UNCHECKED_BY_FAST_PATH) and not (
        _ticket_data_fits(record.type, record.data)
        and ('"dataschema"' not in record.payload or dataschema_uri(record.type) in record.payload)
    ):
        parse_event(json.loads(record.payload))  # raises InvalidEvent naming what is wrong
    if might_hold_personal_data(raw):
        found = personal_data_fields(json.loads(record.payload))
        if found:
            raise InvalidEvent(
                FieldError(path, f"holds {kind} (personal data is redacted at intake; this event did not pass it)")
                for path, kind in found
            )
    return record


def decoder_for(spec: TopicSpec) -> Callable[[bytes], Record]:
    """The decoder of one of the sink's topics (raises on a message it cannot store)."""
    if spec.name == TICKET_STATE.name:
        return decode_ticket_state
    if spec.name == EVENTS.name:
        return decode_clean_input
    if spec.name == POLICIES.name:
        return decode_policy_book
    return decode_pipeline_event

"""The `tawasul.tickets.state` message: one typed struct, its JSON codec and its JSON Schema.

The SLA engine writes it (`stream_processors.ticket_state.build_ticket_state`), the sink and the
metrics feed read it. Field names, order and values are the wire format of
docs/architecture.md ("Messages between stages"); `encode_ticket_state` writes the bytes the
earlier `json.dumps(view, separators=(",", ":"), ensure_ascii=False)` wrote. Times stay RFC 3339
text as sent (readers parse what they need). A null message value (tombstone) is not a state:
readers skip it before decoding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec

from schemas.fields import timestamp_or_none

TICKET_STATE_SCHEMA_ID: Final = "urn:tawasul:schema:tickets.state:1"
TICKET_STATE_SCHEMA_FILE: Final = "tickets.state.schema.json"
INT32_MAX: Final = 2**31 - 1

TicketStatus = Literal["open", "resolved", "closed"]
TargetStatus = Literal["running", "paused", "met", "breached"]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Instant = Annotated[
    str, msgspec.Meta(description="RFC 3339 date-time with its UTC offset", extra_json_schema={"format": "date-time"})
]


class TicketTarget(msgspec.Struct, frozen=True, kw_only=True):
    """One SLA target of a ticket (`first_response` or `resolution`)."""

    deadline: Instant | None = None
    """When the target falls due; null while a pause leaves it open."""
    state: TargetStatus
    warned: bool = False
    breached: bool = False


class TicketStateMessage(msgspec.Struct, frozen=True, kw_only=True):
    """The current state of one ticket, as the SLA engine publishes it after each change."""

    ticket_id: NonEmpty
    channel: NonEmpty
    kind: NonEmpty
    category: NonEmpty
    priority: NonEmpty
    department: str | None = None
    status: TicketStatus
    policy: str | None = None
    """The policy that matched (null: none did, the ticket has no SLA)."""
    opened_at: Instant | None = None
    resolved_at: Instant | None = None
    closed_at: Instant | None = None
    updated_at: Instant | None = None
    """The time of the latest event applied."""
    version: Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
    """Distinct events applied; never decreases."""
    targets: dict[str, TicketTarget] = {}
    policies_sha256: str | None = None
    """The hash of the policy book that decided this state (null from an older worker)."""


class BadTicketState(ValueError):
    """A ticket-state message that breaks the schema (the reason names the field, not the value)."""


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(TicketStateMessage)


def encode_ticket_state(state: TicketStateMessage | Mapping[str, Any]) -> bytes:
    """The message value: compact UTF-8 JSON, field order and text as the wire format says."""
    try:
        return _ENCODER.encode(state)
    except UnicodeEncodeError:  # a lone surrogate in some text: escaped, as JSON allows
        plain = msgspec.to_builtins(state)
        return json.dumps(plain, separators=(",", ":")).encode("ascii")


def decode_ticket_state(value: bytes | str) -> TicketStateMessage:
    """A message value (never a tombstone); raises `BadTicketState` naming what is wrong."""
    try:
        return _checked(_DECODER.decode(value))
    except msgspec.DecodeError as exc:
        raise BadTicketState(f"ticket state: {_reason(exc)}") from None


def ticket_state_from(raw: Mapping[str, Any]) -> TicketStateMessage:
    """The message a decoded JSON object describes; raises `BadTicketState`."""
    if not isinstance(raw, Mapping):
        raise BadTicketState("ticket state: not a JSON object")
    try:
        return _checked(msgspec.convert(dict(raw), TicketStateMessage))
    except msgspec.ValidationError as exc:
        raise BadTicketState(f"ticket state: {_reason(exc)}") from None


def state_as_dict(state: TicketStateMessage) -> dict[str, Any]:
    """The message as plain JSON values (for readers of the earlier dict form)."""
    plain: dict[str, Any] = msgspec.to_builtins(state)
    return plain


def parse_instant(value: str | None, field: str) -> datetime | None:
    """An aware datetime from a message's RFC 3339 text; raises `BadTicketState`."""
    if value is None:
        return None
    parsed = timestamp_or_none(value)
    if parsed is not None:
        return parsed
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadTicketState(f"ticket state: {field} must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise BadTicketState(f"ticket state: {field} has no UTC offset")
    return parsed


def ticket_state_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the message, generated from the struct."""
    body = msgspec.json.schema(TicketStateMessage)
    root = body["$ref"].rsplit("/", 1)[-1]
    defs = body["$defs"]
    main = defs.pop(root)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": TICKET_STATE_SCHEMA_ID,
        **main,
        "$defs": defs,
    }


def _checked(state: TicketStateMessage) -> TicketStateMessage:
    """Rules msgspec does not check: names not blank, times with an offset."""
    for field in _NAMES:
        if not getattr(state, field).strip():
            raise BadTicketState(f"ticket state: {_FIELD_RULES[field]}")
    for field in ("opened_at", "resolved_at", "closed_at", "updated_at"):
        parse_instant(getattr(state, field), field)
    for name, target in state.targets.items():
        parse_instant(target.deadline, f"targets.{name}.deadline")
    return state


_NAMES: Final = ("ticket_id", "channel", "kind", "category", "priority")
_FIELD_RULES: Final = {
    **{name: f"{name} must be a non-empty string" for name in _NAMES},
    "version": "version must be an integer from 0 to 2^31-1",
    "status": "status must be one of open, resolved, closed",
}
_MISSING: Final = re.compile(r"^Object missing required field `([a-z_]+)`")


def _reason(exc: msgspec.MsgspecError) -> str:
    """What is wrong, naming the field (`targets[...].state` for a target), never the value."""
    text = str(exc)
    message, _, path = text.partition(" - at `$")
    field = path.rstrip("`").lstrip(".")
    missing = _MISSING.match(message)
    if missing is not None and not field:
        field = missing.group(1)
    if field in _FIELD_RULES:
        return _FIELD_RULES[field]
    if not field and message.startswith("Expected `object`"):
        return "not a JSON object"
    if "'" in message or '"' in message:
        message = "value not allowed"
    return f"{field}: {message[:1].lower()}{message[1:]}" if field else message

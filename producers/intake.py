"""Validate-and-route one raw input: a valid event to publish, or a dead letter with the reason.

Used by `tawasul publish`, the file adapters and the HTTP gateway, so every way in applies
the same contract checks (`schemas`) and the same privacy rule (`producers.privacy`):

```python
from producers.intake import Accepted, Rejected, accept_line, accept_object, reject

outcome = accept_line(b'{"specversion": "1.0", ...}', "events.jsonl:12", pseudonymiser)
outcome = accept_object(decoded_json_value, "http:<request-id>#0", pseudonymiser)
outcome = reject(original_bytes, "field 6 (holdtime) of CONNECT is not an integer", "queue_log:7")
if isinstance(outcome, Accepted):
    publisher.publish(outcome.event, outcome.value)     # value: the bytes to send
else:
    publisher.reject(outcome, source_kind="http")        # dead letter + metrics
    outcome.reason                                       # "time: must carry an offset"
```

* `accept_line(line, origin, pseudonymiser)`: `line` is one UTF-8 JSON object (a JSON Lines
  line, its line ending optional, or an HTTP body). When the line is valid and holds no raw
  phone number, `Accepted.value` is `line` itself (not re-serialised).
* `accept_object(obj, origin, pseudonymiser, original=None)`: the same for an already
  decoded JSON value (an adapter's event dict, one element of an HTTP batch); the value
  published is the event's compact JSON. `original` (the bytes the object came from) is what
  a dead letter keeps; by default the object's JSON.
* `too_large(head, size, origin)`: the rejection of an input of `size` bytes (over
  `schemas.MAX_EVENT_BYTES`) of which only `head` was read.
* `reject(original, reason, origin, category="adapter")`: a rejection for an input an
  adapter could not translate.

`Rejected.category` is a short, bounded word for metric labels (`not_json`, `invalid`, ...);
`Rejected.reason` the full reason (names fields, never repeats personal values). Nothing
here raises for bad input, and nothing here talks to Kafka.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from producers.deadletter import DeadLetter
from producers.privacy import PHONE_FIELDS, REF_FIELDS, PrivacyError, looks_like_phone_number, redact, scrub
from producers.pseudonymise import Pseudonymiser
from schemas import INPUT_EVENT_TYPES, MAX_EVENT_BYTES, Event, InvalidEvent, decode_event, parse_event
from schemas.errors import WHOLE_EVENT

CATEGORIES: Final = (
    "not_utf8", "not_json", "not_object", "too_large", "unknown_type", "not_input", "invalid", "personal_data",
    "adapter",
)
"""Every value of `Rejected.category` (the `reason` label of `tawasul_events_rejected_total`)."""
_LINE_END: Final = b" \t\r\n"
_FIELD_WORDS: Final = (b"caller", b"customer", b"phone", b"msisdn", b"mobile", b"\\u")
"""Every phone or ref field name holds one of these words (`\\u`: a name could be escaped)."""


@dataclass(frozen=True)
class Accepted:
    """A valid event and the exact bytes to publish as the Kafka message value."""

    event: Event
    value: bytes
    origin: str

    @property
    def key(self) -> bytes:
        """The Kafka message key: the subject, UTF-8."""
        return self.event.subject.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Rejected:
    """An input that is not a valid event: the dead letter to write and a metric category."""

    letter: DeadLetter
    category: str

    @property
    def reason(self) -> str:
        return self.letter.reason

    @property
    def origin(self) -> str:
        return self.letter.origin


Outcome = Accepted | Rejected


def _category(exc: InvalidEvent) -> str:
    first = exc.errors[0] if exc.errors else None
    if first is None:
        return "invalid"
    if first.field == WHOLE_EVENT:
        message = first.message
        for prefix, category in (
            ("not valid UTF-8", "not_utf8"), ("not valid JSON", "not_json"),
            ("too large", "too_large"), ("must be a JSON object", "not_object"),
        ):
            if message.startswith(prefix):
                return category
        return "invalid"
    if first.field == "type" and first.message.startswith("unknown event type"):
        return "unknown_type"
    return "invalid"


def reject(
    original: bytes, reason: str, origin: str, category: str = "adapter", received_at: datetime | None = None
) -> Rejected:
    """A rejection: the original (phone numbers redacted) kept in a dead letter with the reason."""
    letter = DeadLetter(
        original=redact(original), reason=reason, origin=origin, received_at=received_at or datetime.now(UTC)
    )
    return Rejected(letter, category if category in CATEGORIES else "invalid")


def too_large(head: bytes, size: int, origin: str) -> Rejected:
    """The rejection of an oversized input of which only `head` was read."""
    return reject(head, f"{WHOLE_EVENT}: too large: {size} bytes (limit {MAX_EVENT_BYTES})", origin, "too_large")


def _not_input(event: Event, original: bytes, origin: str) -> Rejected:
    """The rejection of a valid event of a type only the stream processors produce."""
    reason = (f"type: {event.type!r} is produced by Tawasul's stream processors, not accepted as input "
              "(input types: ticket.*, call.*, visit.*, survey.submitted)")
    return reject(original, reason, origin, "not_input")


def _has_personal_data(event: Event, body: bytes) -> bool:
    """True when the event's `data` holds a raw phone field or a ref that is a phone number.

    Fast path: a body that names none of those fields (and has no `\\u` escape that could
    spell one) cannot hold them.
    """
    if not any(word in body for word in _FIELD_WORDS):
        return False
    data = event.data
    fields = {**data.__dict__, **(data.model_extra or {})}
    if any(name in fields for name in PHONE_FIELDS):
        return True
    return any(looks_like_phone_number(fields.get(name)) for name in REF_FIELDS)


def _from_dict(raw: dict[str, Any], origin: str, pseudonymiser: Pseudonymiser | None, original: bytes) -> Outcome:
    try:
        event = parse_event(scrub(raw, pseudonymiser))
    except PrivacyError as exc:
        return reject(original, str(exc), origin, "personal_data")
    except InvalidEvent as exc:
        return reject(original, str(exc), origin, _category(exc))
    if event.type not in INPUT_EVENT_TYPES:
        return _not_input(event, original, origin)
    value = event.to_json()
    if len(value) > MAX_EVENT_BYTES:
        return too_large(original, len(value), origin)
    return Accepted(event, value, origin)


def accept_line(line: bytes, origin: str, pseudonymiser: Pseudonymiser | None) -> Outcome:
    """One UTF-8 JSON object (a JSON Lines line or an HTTP body) -> Accepted or Rejected."""
    body = bytes(line).strip(_LINE_END)
    try:
        event = decode_event(body)
    except InvalidEvent as exc:
        return reject(body, str(exc), origin, _category(exc))
    if event.type not in INPUT_EVENT_TYPES:
        return _not_input(event, body, origin)
    if not _has_personal_data(event, body):
        return Accepted(event, body, origin)
    return _from_dict(json.loads(body), origin, pseudonymiser, body)


def _json_bytes(obj: object) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":"), default=str).encode("ascii")
    except (TypeError, ValueError):
        return repr(obj).encode("utf-8", "backslashreplace")


def accept_object(
    obj: object, origin: str, pseudonymiser: Pseudonymiser | None, original: bytes | None = None
) -> Outcome:
    """One decoded JSON value (an adapter's event dict, a batch element) -> Accepted or Rejected."""
    source = original if original is not None else _json_bytes(obj)
    if isinstance(obj, dict):
        return _from_dict(obj, origin, pseudonymiser, source)
    try:
        parse_event(obj)  # raises for every value that is not an object; the reason names its kind
    except InvalidEvent as exc:
        return reject(source, str(exc), origin, _category(exc))
    return reject(source, f"{WHOLE_EVENT}: must be a JSON object", origin, "not_object")

"""Validate-and-route one raw input: a valid event to publish, or a dead letter with the reason.

Used by `tawasul publish`, `tawasul replay`, the file adapters, the HTTP gateway and the demo,
so every way in applies the same contract checks (`schemas`), the same time bounds and the same
privacy rule (`tawasul.infra.privacy`):

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

* `accept_line(line, origin, pseudonymiser, max_skew=FROM_ENV)`: `line` is one UTF-8 JSON
  object (a JSON Lines line, its line ending optional, or an HTTP body). When the line is
  valid and holds no personal data, `Accepted.value` is `line` itself (not re-serialised);
  otherwise the value is the event with its personal data pseudonymised or redacted.
* Time bounds: the schema refuses a `time` before 2000-01-01 (or from 2100 on); intake also
  refuses a `time` more than `max_skew` ahead of the receiving clock (`now()`), category
  `time`. `FROM_ENV` reads `TAWASUL_MAX_CLOCK_SKEW` (`max_clock_skew`, default 5 minutes);
  `None` applies no skew bound (`tawasul replay` of history).
* `accept_object(obj, origin, pseudonymiser, original=None, max_skew=FROM_ENV)`: the same for an already
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

import enum
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from schemas import INPUT_EVENT_TYPES, MAX_EVENT_BYTES, Event, InvalidEvent, decode_event, parse_event
from schemas.errors import WHOLE_EVENT
from schemas.fields import TIME_RANGE_MESSAGE, format_timestamp
from tawasul.domain.durations import format_duration, parse_duration
from tawasul.domain.errors import DurationError
from tawasul.infra.deadletter import DeadLetter
from tawasul.infra.privacy import (
    PHONE_FIELDS,
    REF_FIELDS,
    PrivacyError,
    looks_like_phone_number,
    might_hold_personal_data,
    personal_data_fields,
    redact,
    redact_event,
    redact_text,
    scrub,
)
from tawasul.infra.pseudonymise import Pseudonymiser

CATEGORIES: Final = (
    "not_utf8",
    "not_json",
    "not_object",
    "too_large",
    "unknown_type",
    "not_input",
    "invalid",
    "personal_data",
    "adapter",
    "time",
    "forbidden",
)
"""Every value of `Rejected.category` (the `reason` label of `tawasul_events_rejected_total`)."""
_LINE_END: Final = b" \t\r\n"
_FIELD_WORDS: Final = (b"caller", b"customer", b"phone", b"msisdn", b"mobile", b"\\u")
"""Every phone or ref field name holds one of these words (`\\u`: a name could be escaped)."""
ENV_MAX_CLOCK_SKEW: Final = "TAWASUL_MAX_CLOCK_SKEW"
DEFAULT_MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
NO_SKEW_BOUND: Final = ("none", "off")
"""Values of TAWASUL_MAX_CLOCK_SKEW that switch the skew bound off."""


class Skew(enum.Enum):
    """`FROM_ENV`: the live skew bound of TAWASUL_MAX_CLOCK_SKEW (pickles as itself)."""

    FROM_ENV = "env"


FROM_ENV: Final = Skew.FROM_ENV
MaxSkew = timedelta | None | Skew
"""How far ahead of the receiving clock an event time may be: a duration, None (no bound:
history), or FROM_ENV."""


class SkewSettingError(ValueError):
    """TAWASUL_MAX_CLOCK_SKEW is not a duration."""


@lru_cache(maxsize=8)
def _parse_skew(text: str) -> timedelta | None:
    value = text.strip().lower()
    if not value:
        return DEFAULT_MAX_CLOCK_SKEW
    if value in NO_SKEW_BOUND:
        return None
    try:
        return timedelta(seconds=float(value)) if value.replace(".", "", 1).isdigit() else parse_duration(value)
    except (DurationError, OverflowError, ValueError):
        raise SkewSettingError(
            f"{ENV_MAX_CLOCK_SKEW}={text!r}: must be a duration like 5m, 90s or 1h, a number of seconds, or 'none'"
        ) from None


def max_clock_skew(environ: dict[str, str] | None = None) -> timedelta | None:
    """The live skew bound: TAWASUL_MAX_CLOCK_SKEW (`5m`, `300`, `none`), default 5 minutes."""
    env = os.environ if environ is None else environ
    return _parse_skew(env.get(ENV_MAX_CLOCK_SKEW, ""))


def resolve_skew(max_skew: MaxSkew) -> timedelta | None:
    """`max_skew` as a duration or None: FROM_ENV read now (resolve it once for many inputs)."""
    return max_clock_skew() if max_skew is FROM_ENV else max_skew


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
    if first.field == "time" and first.message == TIME_RANGE_MESSAGE:
        return "time"
    if first.field == WHOLE_EVENT:
        message = first.message
        for prefix, category in (
            ("not valid UTF-8", "not_utf8"),
            ("not valid JSON", "not_json"),
            ("too large", "too_large"),
            ("must be a JSON object", "not_object"),
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
        original=redact(original),
        reason=redact_text(reason),
        origin=origin,
        received_at=received_at or datetime.now(UTC),
    )
    return Rejected(letter, category if category in CATEGORIES else "invalid")


def too_large(head: bytes, size: int, origin: str) -> Rejected:
    """The rejection of an oversized input of which only `head` was read."""
    return reject(head, f"{WHOLE_EVENT}: too large: {size} bytes (limit {MAX_EVENT_BYTES})", origin, "too_large")


def _not_input(event: Event, original: bytes, origin: str) -> Rejected:
    """The rejection of a valid event of a type only the stream processors produce."""
    reason = (
        f"type: {event.type!r} is produced by Tawasul's stream processors, not accepted as input "
        "(input types: ticket.*, call.*, visit.*, survey.submitted)"
    )
    return reject(original, reason, origin, "not_input")


def _ahead(event: Event, original: bytes, origin: str, max_skew: MaxSkew) -> Rejected | None:
    """The rejection of an event whose time is more than the allowed skew ahead of now, else None."""
    skew = resolve_skew(max_skew)
    if skew is None:
        return None
    now = datetime.now(UTC)
    if event.time - now <= skew:
        return None
    reason = (
        f"time: {format_timestamp(event.time)} is more than {format_duration(skew)} ahead of the receiving "
        f"clock ({format_timestamp(now.replace(microsecond=0))}; allowed skew: {ENV_MAX_CLOCK_SKEW})"
    )
    return reject(original, reason, origin, "time")


def _has_personal_data(event: Event, body: bytes) -> bool:
    """True when the event may hold personal data: a raw phone field, a ref that is personal
    data, or a phone number, e-mail address or Emirates ID in any string.

    Fast path: a body that names none of those fields (and has no `\\u` escape that could
    spell one) and matches no personal-data pattern cannot hold them.
    """
    if might_hold_personal_data(body) and personal_data_fields(json.loads(body)):
        return True
    if not any(word in body for word in _FIELD_WORDS):
        return False
    data = event.data
    fields = {**data.__dict__, **(data.model_extra or {})}
    if any(name in fields for name in PHONE_FIELDS):
        return True
    return any(looks_like_phone_number(fields.get(name)) for name in REF_FIELDS)


def _from_dict(
    raw: dict[str, Any], origin: str, pseudonymiser: Pseudonymiser | None, original: bytes, max_skew: MaxSkew
) -> Outcome:
    try:
        event = parse_event(redact_event(scrub(raw, pseudonymiser), pseudonymiser))
    except PrivacyError as exc:
        return reject(original, str(exc), origin, "personal_data")
    except InvalidEvent as exc:
        return reject(original, str(exc), origin, _category(exc))
    if event.type not in INPUT_EVENT_TYPES:
        return _not_input(event, original, origin)
    ahead = _ahead(event, original, origin, max_skew)
    if ahead is not None:
        return ahead
    value = event.to_json()
    if len(value) > MAX_EVENT_BYTES:
        return too_large(original, len(value), origin)
    return Accepted(event, value, origin)


def accept_line(line: bytes, origin: str, pseudonymiser: Pseudonymiser | None, max_skew: MaxSkew = FROM_ENV) -> Outcome:
    """One UTF-8 JSON object (a JSON Lines line or an HTTP body) -> Accepted or Rejected."""
    body = bytes(line).strip(_LINE_END)
    try:
        event = decode_event(body)
    except InvalidEvent as exc:
        return reject(body, str(exc), origin, _category(exc))
    if event.type not in INPUT_EVENT_TYPES:
        return _not_input(event, body, origin)
    if not _has_personal_data(event, body):
        ahead = _ahead(event, body, origin, max_skew)
        return Accepted(event, body, origin) if ahead is None else ahead
    return _from_dict(json.loads(body), origin, pseudonymiser, body, max_skew)


def _json_bytes(obj: object) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":"), default=str).encode("ascii")
    except (TypeError, ValueError):
        return repr(obj).encode("utf-8", "backslashreplace")


def accept_object(
    obj: object,
    origin: str,
    pseudonymiser: Pseudonymiser | None,
    original: bytes | None = None,
    max_skew: MaxSkew = FROM_ENV,
) -> Outcome:
    """One decoded JSON value (an adapter's event dict, a batch element) -> Accepted or Rejected."""
    source = original if original is not None else _json_bytes(obj)
    if isinstance(obj, dict):
        return _from_dict(obj, origin, pseudonymiser, source, max_skew)
    try:
        parse_event(obj)  # raises for every value that is not an object; the reason names its kind
    except InvalidEvent as exc:
        return reject(source, str(exc), origin, _category(exc))
    return reject(source, f"{WHOLE_EVENT}: must be a JSON object", origin, "not_object")

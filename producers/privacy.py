"""Keep raw phone numbers out of Kafka and the logs.

* `scrub(raw, pseudonymiser)`: before an event is published, raw phone-number fields inside
  `data` (`caller_number`, `caller_id`, `phone`, `msisdn`, `mobile`) are removed and their
  keyed pseudonym is put into `caller_ref` (call events) or `customer_ref` (other events)
  unless that is already set. A `caller_ref` / `customer_ref` that holds a phone number
  rather than a pseudonym (`+9715...`, `05...`) is pseudonymised too. Without a
  pseudonymiser such an event is refused with `PrivacyError` (the message names the field,
  never the value).
* `redact(original)`: the bytes kept in a dead letter, with the values of those fields
  replaced by `"[redacted]"`, so the dead-letter topic holds no raw number either;
  `redact_delimited(line, b"|", 5)` does the same for the data fields of a queue_log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from producers.pseudonymise import Pseudonymiser, PseudonymiseError, normalise

PHONE_FIELDS: Final = ("caller_number", "caller_id", "phone", "msisdn", "mobile")
"""`data` fields that hold a raw phone number."""
REF_FIELDS: Final = ("caller_ref", "customer_ref")
"""`data` fields that must hold a pseudonym."""
REDACTED: Final = "[redacted]"
_NO_NUMBER: Final = frozenset(
    {"", "anonymous", "unknown", "<unknown>", "restricted", "private", "withheld", "unavailable"}
)
_PHONE_NUMBER: Final = re.compile(r"^(\+|0)[0-9]{7,14}$")
"""A normalised number in international (`+971...`, `00971...` -> `+971...`) or local (`05...`) form."""
_FIELD_NAMES: Final = "|".join(PHONE_FIELDS + REF_FIELDS)
_FIELD_VALUE: Final = re.compile(
    rf'("(?:{_FIELD_NAMES})"\s*:\s*)("(?:[^"\\]|\\.)*"?|-?[0-9][0-9.eE+\-]*|\[[^\]]*\]?|\{{[^}}]*\}}?)'.encode(
        "ascii"
    )
)
_REDACTED_JSON: Final = b'"' + REDACTED.encode("ascii") + b'"'
_NUMBER_FIELD: Final = re.compile(rb"^\s*\+?[0-9][0-9 \-()/]{5,}[0-9]\s*$")


class PrivacyError(ValueError):
    """An event carries a raw phone number that cannot be pseudonymised here."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(
            f"{field}: a raw phone number is not accepted without the pseudonymisation key "
            "(TAWASUL_PSEUDONYM_KEY)"
        )


def looks_like_phone_number(value: object) -> bool:
    """True for a phone number written as one (`+971 50 123 4567`, `0501234567`, `00971...`)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    return _PHONE_NUMBER.match(normalise(str(value))) is not None


def _number(value: object) -> str | None:
    """The number to pseudonymise in a raw phone field, or None when it holds none."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return None if text.lower() in _NO_NUMBER else text


def needs_scrub(data: Mapping[str, Any]) -> bool:
    """True when `data` holds a raw phone field or a ref that is really a phone number."""
    return any(name in data for name in PHONE_FIELDS) or any(
        looks_like_phone_number(data.get(name)) for name in REF_FIELDS
    )


def _ref(pseudonymiser: Pseudonymiser | None, field: str, number: str) -> str:
    if pseudonymiser is None:
        raise PrivacyError(field)
    try:
        return pseudonymiser.ref(number)
    except PseudonymiseError:
        raise PrivacyError(field) from None


def scrub(raw: dict[str, Any], pseudonymiser: Pseudonymiser | None) -> dict[str, Any]:
    """`raw` with no raw phone number left in `data` (a new dict; `raw` is not changed).

    Raises `PrivacyError` naming the field when a number is present and there is no
    pseudonymiser. Events without such fields are returned as they are.
    """
    data = raw.get("data")
    if not isinstance(data, dict) or not needs_scrub(data):
        return raw
    clean = dict(data)
    event_type = raw.get("type")
    target = "caller_ref" if isinstance(event_type, str) and event_type.startswith("call.") else "customer_ref"
    for name in REF_FIELDS:
        value = clean.get(name)
        if looks_like_phone_number(value):
            clean[name] = _ref(pseudonymiser, f"data.{name}", str(value))
    for name in PHONE_FIELDS:
        if name not in clean:
            continue
        number = _number(clean.pop(name))
        if number is not None:
            ref = _ref(pseudonymiser, f"data.{name}", number)
            clean.setdefault(target, ref)
    return {**raw, "data": clean}


def _redact_value(name: str, value: object) -> object:
    if name in REF_FIELDS and isinstance(value, str) and not looks_like_phone_number(value):
        return value
    return REDACTED


def _redact_tree(value: object) -> object:
    """A decoded JSON value with every phone or ref field (at any depth) redacted."""
    if isinstance(value, dict):
        return {
            key: _redact_value(key, item) if key in PHONE_FIELDS + REF_FIELDS else _redact_tree(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_tree(item) for item in value]
    return value


def redact(original: bytes) -> bytes:
    """`original` with the value of every phone or ref field replaced by "[redacted]".

    Works on the bytes, so it also cleans input that is not valid JSON (a line cut short).
    Refs that are strings and not phone numbers (proper pseudonyms) are kept. JSON that
    spells a field name with `\\u` escapes is decoded, redacted and encoded again.
    """
    escaped = b"\\u" in original
    if not escaped and not any(name.encode("ascii") in original for name in PHONE_FIELDS + REF_FIELDS):
        return original

    def replace(match: re.Match[bytes]) -> bytes:
        name = match.group(1).split(b'"')[1].decode("ascii")
        value = match.group(2)
        if name in REF_FIELDS and value.startswith(b'"'):  # a ref that is a string and no number stays
            text = value.strip(b'"').decode("utf-8", "replace")
            if not looks_like_phone_number(text):
                return match.group(0)
        return match.group(1) + _REDACTED_JSON

    cleaned = _FIELD_VALUE.sub(replace, original)
    if not escaped:
        return cleaned
    try:
        decoded = json.loads(cleaned)
    except ValueError:
        return cleaned
    redacted = _redact_tree(decoded)
    if redacted == decoded:
        return cleaned
    return json.dumps(redacted, separators=(",", ":")).encode("ascii")


def redact_delimited(line: bytes, delimiter: bytes, first_field: int = 0) -> bytes:
    """A delimited text line (a queue_log line) with every field from `first_field` on that
    is a phone number (7 to 15 digits, optionally `+` and separators) replaced by "[redacted]"."""
    fields = line.split(delimiter)
    for index in range(first_field, len(fields)):
        field = fields[index]
        if _NUMBER_FIELD.match(field) and 7 <= sum(ch in b"0123456789" for ch in field) <= 15:
            fields[index] = REDACTED.encode("ascii")
    return delimiter.join(fields)

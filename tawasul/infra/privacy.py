"""Keep raw phone numbers, e-mail addresses and Emirates ID numbers out of Kafka and the logs.

* `scrub(raw, pseudonymiser)`: before an event is published, raw phone-number fields inside
  `data` (`caller_number`, `caller_id`, `phone`, `msisdn`, `mobile`) are removed and their
  keyed pseudonym is put into `caller_ref` (call events) or `customer_ref` (other events)
  unless that is already set. A `caller_ref` / `customer_ref` that holds a phone number
  rather than a pseudonym (`+9715...`, `05...`) is pseudonymised too. Without a
  pseudonymiser such an event is refused with `PrivacyError` (the message names the field,
  never the value).
* `redact(original)`: the bytes kept in a dead letter, with the values of those fields
  replaced by `"[redacted]"`, and personal data in free text replaced as below, so the
  dead-letter topic holds no raw number either; `redact_delimited(line, b"|", 5)` does the
  same for the data fields of a queue_log line.
* Personal data in free text, anywhere in an event (`comment`, `subject`, nested fields,
  extension attributes): `redact_text(text)` replaces each phone number (UAE and
  international formats), e-mail address and Emirates ID number by `[phone]`, `[email]` or
  `[emirates-id]`; `redact_event(raw, pseudonymiser)` does it to every string of an event and
  pseudonymises the identity attributes (`id`, `subject`, `source`) instead, so distinct ids
  stay distinct. `might_hold_personal_data(body)` is the fast test on raw bytes (never false
  for a body that holds any), `personal_data_fields(obj)` names the fields that do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from tawasul.infra.pseudonymise import PseudonymiseError, Pseudonymiser, normalise

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
    rf'("(?:{_FIELD_NAMES})"\s*:\s*)("(?:[^"\\]|\\.)*"?|-?[0-9][0-9.eE+\-]*|\[[^\]]*\]?|\{{[^}}]*\}}?)'.encode("ascii")
)
_REDACTED_JSON: Final = b'"' + REDACTED.encode("ascii") + b'"'
_NUMBER_FIELD: Final = re.compile(rb"^\s*\+?[0-9][0-9 \-()/]{5,}[0-9]\s*$")

# ------------------------------------------------------------------ personal data in free text
# The patterns need the structure of a phone number, an e-mail address or an Emirates ID, and
# a match may not continue a word or a longer id: ids (`T-0001234`, UUIDs), timestamps
# (`+04:00`), counts and mosque ids are left alone. Digits are matched after Arabic-Indic
# digits are read as ASCII ones (`_DIGITS`, one character for one, so positions agree).
_SEP: Final = r"[ \-.]?"
_GROUP_SEP: Final = r"(?:[ \-.]|\)[ \-.]?|[ \-.]?\()?"
_START: Final = r"(?<![A-Za-z0-9_+])(?<![A-Za-z0-9][\-./])"
_END: Final = r"(?![A-Za-z0-9_])"
_UUID: Final = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
"""UUIDs are ids, never personal data: masked before matching (their digit runs could look like numbers)."""
PHONE_PATTERN: Final = (
    _START + r"(?:"
    r"(?:\+|00)[ ]?[1-9](?:" + _GROUP_SEP + r"[0-9]){8,14}"  # +971 50 123 4567, 0044 20 7946 0958
    r"|\+?971" + _SEP + r"(?:\(0\)" + _SEP + r")?5(?:" + _SEP + r"[0-9]){8}"  # 971501234567
    r"|\(?05[0-9]\)?(?:" + _SEP + r"[0-9]){7}"  # 050 123 4567, (050) 1234567
    r"|\(?0[234679]\)?(?:" + _SEP + r"[0-9]){7}"  # 04 123 4567
    r")" + _END
)
"""A phone number: international (`+` or `00` and 9 to 15 digits), UAE mobile with 971 and
no `+`, UAE mobile or landline with the trunk `0`; single spaces, dashes or dots between digits.
Every match holds at least 9 digits (`_RUN_BYTES` relies on it)."""
EMIRATES_ID_PATTERN: Final = _START + r"784" + _SEP + r"[0-9]{4}" + _SEP + r"[0-9]{7}" + _SEP + r"[0-9]" + _END
"""An Emirates ID number: 784-YYYY-NNNNNNN-N, with or without dashes or spaces."""
EMAIL_PATTERN: Final = r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[^\W\d_]{2,}"
"""An e-mail address (letters of any script)."""
_PERSONAL: Final = re.compile(rf"(?P<eid>{EMIRATES_ID_PATTERN})|(?P<email>{EMAIL_PATTERN})|(?P<phone>{PHONE_PATTERN})")
_MARKERS: Final = {"eid": "[emirates-id]", "email": "[email]", "phone": "[phone]"}
_KINDS: Final = {"eid": "an Emirates ID number", "email": "an e-mail address", "phone": "a phone number"}
_DIGITS: Final = {code: ord("0") + (code - base) % 10 for base in (0x0660, 0x06F0) for code in range(base, base + 10)}
"""Arabic-Indic and extended Arabic-Indic digits, read as ASCII digits."""
_MIN_DIGITS: Final = 9
_RUN: Final = r"[+(079](?<![0-9][079])[0-9 \-.()]{8,}"
"""A run of digits and separators that begins as a number can (`+`, `(`, or a first digit 0, 7
or 9 after no digit): every phone number and Emirates ID lies in one holding at least
`_MIN_DIGITS` digits. Cheap to find (dates and ids rarely start one); the exact patterns then
look at the few there are. It begins with one character class so that the regular expression
engine skips every other character quickly."""
_SEPARATORS: Final = b" -.()+"
_RUN_STR: Final = re.compile(_RUN)
_RUN_BYTES: Final = re.compile(_RUN.encode("ascii"))
_NUMBER_BYTES: Final = re.compile(f"{EMIRATES_ID_PATTERN}|{PHONE_PATTERN}".encode("ascii"))
_CONTEXT: Final = 6
"""Characters before a run that a match may start with or look behind at (`+ `, `00`, `(`)."""
_ARABIC_DIGIT_BYTES: Final = re.compile(rb"\xd9[\xa0-\xa9]|\xdb[\xb0-\xb9]")
IDENTITY_ATTRIBUTES: Final = ("id", "subject", "source")
"""Attributes that identify an event or its subject: pseudonymised, never collapsed to a marker."""


def might_hold_personal_data(body: bytes) -> bool:
    """False only when `body` (raw JSON bytes) certainly holds no phone number, e-mail
    address or Emirates ID in any string: the fast path of intake and the sink. True may be
    a false alarm (a UUID's digits): `personal_data_fields` decides."""
    if b"@" in body or b"\\" in body:  # an address, or a JSON escape (could spell anything)
        return True
    if (b"\xd9" in body or b"\xdb" in body) and _ARABIC_DIGIT_BYTES.search(body) is not None:
        return True
    if _RUN_BYTES.search(body) is None:
        return False
    for run in _RUN_BYTES.finditer(body):
        if len(run.group().translate(None, _SEPARATORS)) < _MIN_DIGITS:
            continue
        if _NUMBER_BYTES.search(body, max(0, run.start() - _CONTEXT), run.end() + 1) is not None:
            return True
    return False


def _matches(text: str) -> list[re.Match[str]]:
    """The personal values in `text`, found on a copy with Arabic-Indic digits read as ASCII and
    UUIDs masked (same length, so the positions are those of `text`)."""
    if not text.isascii():
        text = text.translate(_DIGITS)
    if "@" not in text and _RUN_STR.search(text) is None:
        return []
    if "-" in text:
        text = _UUID.sub(lambda match: "x" * len(match.group(0)), text)
    return list(_PERSONAL.finditer(text))


def redact_text(text: str) -> str:
    """`text` with every phone number, e-mail address and Emirates ID replaced by a marker."""
    matches = _matches(text)
    if not matches:
        return text
    out, last = [], 0
    for match in matches:
        out.append(text[last : match.start()])
        out.append(_MARKERS[match.lastgroup or "phone"])
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def personal_data_kind(text: str) -> str | None:
    """What personal data `text` holds ("a phone number", ...), or None."""
    matches = _matches(text)
    return None if not matches else _KINDS[matches[0].lastgroup or "phone"]


def personal_data_fields(value: object, path: str = "") -> list[tuple[str, str]]:
    """`(field path, kind)` for every string (or key) of a decoded JSON value holding personal data."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        kind = personal_data_kind(value)
        if kind is not None:
            found.append((path or "event", kind))
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and personal_data_kind(key) is not None:
                found.append((f"{path or 'event'} (a field name)", personal_data_kind(key) or ""))
                name = f"{path}.{redact_text(key)}" if path else redact_text(key)
            found.extend(personal_data_fields(item, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(personal_data_fields(item, f"{path}[{index}]"))
    return found


def redact_tree(value: object) -> object:
    """A decoded JSON value with personal data redacted from every string and key."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_text(key) if isinstance(key, str) else key: redact_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_tree(item) for item in value]
    return value


def _pseudonymise_text(text: str, field: str, pseudonymiser: Pseudonymiser | None) -> str:
    """An identity attribute with each personal value replaced by `[<kind>-<keyed pseudonym>]`."""
    matches = _matches(text)
    if not matches:
        return text
    if pseudonymiser is None:
        raise PrivacyError(field, personal_data_kind(text) or "personal data")
    out, last = [], 0
    for match in matches:
        marker = _MARKERS[match.lastgroup or "phone"][:-1]
        out += [text[last : match.start()], f"{marker}-{_ref(pseudonymiser, field, match.group(0))}]"]
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def redact_event(raw: dict[str, Any], pseudonymiser: Pseudonymiser | None) -> dict[str, Any]:
    """`raw` (a decoded event, after `scrub`) with no personal data left in any string.

    Identity attributes (`id`, `subject`, `source`) get a keyed pseudonym in place of each
    personal value (raises `PrivacyError` naming the attribute without a pseudonymiser);
    every other string, key and extension value gets a marker (`[phone]`, ...).
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in IDENTITY_ATTRIBUTES and isinstance(value, str):
            out[key] = _pseudonymise_text(value, key, pseudonymiser)
        else:
            out[redact_text(key) if isinstance(key, str) else key] = redact_tree(value)
    return out


class PrivacyError(ValueError):
    """An event carries a raw phone number that cannot be pseudonymised here."""

    def __init__(self, field: str, kind: str = "a raw phone number") -> None:
        self.field = field
        super().__init__(f"{field}: {kind} is not accepted without the pseudonymisation key (TAWASUL_PSEUDONYM_KEY)")


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


def _raw_ref(value: object) -> bool:
    """True for a ref that is a phone number or holds an e-mail address or Emirates ID."""
    return looks_like_phone_number(value) or (isinstance(value, str) and personal_data_kind(value) is not None)


def needs_scrub(data: Mapping[str, Any]) -> bool:
    """True when `data` holds a raw phone field or a ref that is really personal data."""
    return any(name in data for name in PHONE_FIELDS) or any(_raw_ref(data.get(name)) for name in REF_FIELDS)


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
        if _raw_ref(value):
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
    if name in REF_FIELDS and isinstance(value, str) and not _raw_ref(value):
        return value
    return REDACTED


def _redact_tree(value: object) -> object:
    """A decoded JSON value with every phone or ref field (at any depth) redacted, and
    personal data redacted from every other string."""
    if isinstance(value, dict):
        return {
            redact_text(key): _redact_value(key, item) if key in PHONE_FIELDS + REF_FIELDS else _redact_tree(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_tree(item) for item in value]
    return redact_text(value) if isinstance(value, str) else value


def _redact_free_text(original: bytes) -> bytes:
    """`original` with personal data redacted from its text (any bytes: undecodable ones are kept)."""
    if not might_hold_personal_data(original):
        return original
    text = original.decode("utf-8", "surrogateescape")
    cleaned = redact_text(text)
    return original if cleaned == text else cleaned.encode("utf-8", "surrogateescape")


def redact(original: bytes) -> bytes:
    """`original` with the value of every phone or ref field replaced by "[redacted]", and
    every phone number, e-mail address and Emirates ID in its text by a marker.

    Works on the bytes, so it also cleans input that is not valid JSON (a line cut short).
    Refs that are strings and not personal data (proper pseudonyms) are kept. JSON with
    escapes (`\\u0030`, `\\n`: they could spell a number or a field name) is decoded,
    redacted and encoded again.
    """
    escaped = b"\\" in original
    if not escaped and not any(name.encode("ascii") in original for name in PHONE_FIELDS + REF_FIELDS):
        return _redact_free_text(original)

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
        return _redact_free_text(cleaned)
    try:
        decoded = json.loads(cleaned)
    except (ValueError, RecursionError):
        return _redact_free_text(cleaned)
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

"""Dead letters: rejected input kept with the reason, for inspection and re-publishing.

A dead letter on `tawasul.deadletter` is a JSON object (docs/architecture.md):

```json
{"reason": "time: must carry an offset", "origin": "events.jsonl:12",
 "received_at": "2025-05-13T08:03:43.120000Z",
 "original": "{...the rejected line...}", "original_base64": "ey4uLn0="}
```

`original` is the rejected input as text when it is UTF-8 (else null), `original_base64`
the same bytes in base64 (always present). `reason` and `origin` are also message headers.
Raw phone numbers are never stored: `tawasul.infra.privacy.redact` blanks them before a dead
letter is built, and inputs larger than `MAX_ORIGINAL_BYTES` keep only their first bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

MAX_ORIGINAL_BYTES: Final = 64 * 1024
"""An input larger than this (an oversized line) keeps only its first bytes in the letter."""
MAX_HEADER_CHARS: Final = 1024
"""Headers carry at most this many characters of `reason` / `origin` (the JSON keeps all)."""


class DeadLetterError(ValueError):
    """A Kafka message value that is not a dead letter."""


def _now() -> datetime:
    return datetime.now(UTC)


def _clip(original: bytes) -> bytes:
    """At most MAX_ORIGINAL_BYTES, cut at a UTF-8 character boundary when the input is text."""
    if len(original) <= MAX_ORIGINAL_BYTES:
        return original
    cut = original[:MAX_ORIGINAL_BYTES]
    for back in range(4):
        try:
            (cut[: len(cut) - back]).decode("utf-8")
        except UnicodeDecodeError:
            continue
        return cut[: len(cut) - back]
    return cut


def _rfc3339(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass(frozen=True)
class DeadLetter:
    """One rejected input: its bytes, why it was rejected, where it came from and when."""

    original: bytes
    reason: str
    origin: str
    received_at: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None:
            raise DeadLetterError("received_at must be an aware datetime")
        object.__setattr__(self, "original", _clip(bytes(self.original)))

    @property
    def text(self) -> str | None:
        """The original as text, or None when it is not UTF-8."""
        try:
            return self.original.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "reason": self.reason,
            "origin": self.origin,
            "received_at": _rfc3339(self.received_at),
            "original": self.text,
            "original_base64": base64.b64encode(self.original).decode("ascii"),
        }

    def to_json(self) -> bytes:
        """The Kafka message value (compact UTF-8 JSON)."""
        body = self.to_dict()
        try:
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates in a reason survive only as \u escapes
            return json.dumps(body, separators=(",", ":")).encode("ascii")

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers `reason` and `origin` (UTF-8)."""
        return [
            ("reason", self.reason[:MAX_HEADER_CHARS].encode("utf-8", "backslashreplace")),
            ("origin", self.origin[:MAX_HEADER_CHARS].encode("utf-8", "backslashreplace")),
        ]


def decode_dead_letter(value: bytes) -> DeadLetter:
    """A dead letter from its Kafka message value; raises DeadLetterError."""
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeadLetterError(f"not a JSON dead letter: {exc}") from None
    if not isinstance(body, dict):
        raise DeadLetterError("a dead letter is a JSON object")
    missing = [key for key in ("reason", "origin", "received_at", "original_base64") if key not in body]
    if missing:
        raise DeadLetterError(f"dead letter without {', '.join(missing)}")
    try:
        original = base64.b64decode(body["original_base64"], validate=True)
        received_at = datetime.fromisoformat(str(body["received_at"]).replace("Z", "+00:00"))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise DeadLetterError(f"malformed dead letter: {exc}") from None
    if not isinstance(body["reason"], str) or not isinstance(body["origin"], str):
        raise DeadLetterError("reason and origin must be strings")
    return DeadLetter(original=original, reason=body["reason"], origin=body["origin"], received_at=received_at)

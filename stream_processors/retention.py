"""How long a closed ticket stays in the SLA table: `TAWASUL_CLOSED_RETENTION` (default 35 days)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Final

from tawasul.domain.durations import parse_duration
from tawasul.domain.errors import DurationError

ENV_CLOSED_RETENTION: Final = "TAWASUL_CLOSED_RETENTION"
DEFAULT_CLOSED_RETENTION: Final = timedelta(days=35)
KEEP_FOREVER: Final = ("none", "off")


class RetentionSettingError(ValueError):
    """TAWASUL_CLOSED_RETENTION is not a duration."""


def closed_retention_us(environ: dict[str, str] | None = None) -> int | None:
    """The retention in microseconds after closing (`35d`, `840h`, `90m`, `30s`; a bare number
    is seconds); None (`none`, `off`): closed tickets stay."""
    env = os.environ if environ is None else environ
    text = env.get(ENV_CLOSED_RETENTION, "").strip().lower()
    if not text:
        return DEFAULT_CLOSED_RETENTION // timedelta(microseconds=1)
    if text in KEEP_FOREVER:
        return None
    try:
        if text.replace(".", "", 1).isdigit():
            value = timedelta(seconds=float(text))
        elif text.endswith("d") and text[:-1].isdigit():
            value = timedelta(days=int(text[:-1]))
        else:
            value = parse_duration(text)
    except (DurationError, OverflowError, ValueError):
        raise RetentionSettingError(
            f"{ENV_CLOSED_RETENTION}={text!r}: must be a duration like 35d, "
            "840h, 90m or 30s, a number of seconds, or 'none'"
        ) from None
    if value <= timedelta(0):
        raise RetentionSettingError(f"{ENV_CLOSED_RETENTION}={text!r}: must be positive")
    return value // timedelta(microseconds=1)

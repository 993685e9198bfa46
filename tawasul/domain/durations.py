"""Business durations written as `90m`, `4h`, `1h30m` or `45s`."""

from __future__ import annotations

import re
from datetime import timedelta

from tawasul.domain.errors import DurationError

_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


def parse_duration(text: object) -> timedelta:
    """Parse `1h30m`-style text (hours, minutes, seconds, in that order) into a positive timedelta."""
    if not isinstance(text, str):
        raise DurationError(f"must be a string like '90m', '4h' or '1h30m', got {text!r}")
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise DurationError(
            f"bad duration {text!r}: use hours, minutes and seconds like '90m', '4h', '1h30m' "
            "(business days depend on the calendar, so write them as hours)"
        )
    hours, minutes, seconds = (int(match.group(k) or 0) for k in ("h", "m", "s"))
    value = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if value <= timedelta(0):
        raise DurationError(f"bad duration {text!r}: must be greater than zero")
    return value


def format_duration(value: timedelta) -> str:
    """The inverse of `parse_duration` for whole seconds: 5400 s -> `1h30m`."""
    total = int(value.total_seconds())
    if total <= 0 or value != timedelta(seconds=total):
        raise DurationError(f"cannot format {value!r}: only positive whole seconds")
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)

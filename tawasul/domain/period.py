"""The report period: `--from` / `--to` as ISO 8601, a date alone meaning 00:00 Asia/Dubai.

`--to` is exclusive. A date and time without an offset is read as Asia/Dubai local time too;
one with an offset (`Z`, `+04:00`, ...) is taken as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from tawasul.domain.errors import DomainError

__all__ = ["DUBAI", "REPORT_OFFSET", "Period", "PeriodError", "parse_instant", "parse_period", "rfc3339"]

DUBAI = ZoneInfo("Asia/Dubai")
"""The department's time zone: dates without a time mean midnight here."""
REPORT_OFFSET = timezone(timedelta(hours=4))
"""The report renders its instants in +04:00 (Asia/Dubai has no daylight saving)."""


class PeriodError(DomainError, ValueError):
    """A report period could not be read or is empty."""


def parse_instant(text: str, name: str = "date") -> datetime:
    """An aware datetime from ISO 8601 text.

    `2025-01-01` is 00:00 Asia/Dubai; `2025-01-01T08:00` is 08:00 Asia/Dubai;
    `2025-01-01T04:00:00Z` and `2025-01-01T08:00+04:00` keep their offset.
    """
    value = text.strip()
    if not value:
        raise PeriodError(f"{name}: empty, use an ISO 8601 date such as 2025-01-01")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), time())
        except ValueError:
            raise PeriodError(
                f"{name}: {text!r} is not an ISO 8601 date or date-time, e.g. 2025-01-01 or 2025-01-01T08:00:00+04:00"
            ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=DUBAI)
    return parsed


def rfc3339(instant: datetime) -> str:
    """`instant` as RFC 3339 in +04:00, e.g. `2025-01-01T00:00:00+04:00` (fractions only when present)."""
    local = instant.astimezone(REPORT_OFFSET)
    return local.isoformat(timespec="microseconds" if local.microsecond else "seconds")


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open interval of time [start, end), both aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, value in (("from", self.start), ("to", self.end)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise PeriodError(f"{name}: {value.isoformat()} has no time zone")
        if self.end <= self.start:
            raise PeriodError(f"--to ({rfc3339(self.end)}) must be after --from ({rfc3339(self.start)})")

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def to_json(self) -> dict[str, str]:
        """`{"from": ..., "to": ...}` in RFC 3339, +04:00: the report's `period`."""
        return {"from": rfc3339(self.start), "to": rfc3339(self.end)}


def parse_period(start: str, end: str) -> Period:
    """The period from `--from` and `--to` text; raises PeriodError when bad or empty."""
    return Period(parse_instant(start, "--from"), parse_instant(end, "--to"))

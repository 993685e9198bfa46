"""Business time between two instants of one calendar, interval by interval: the working
intervals that counted, the closed days skipped (holiday, extra closed date, weekend) and the
Ramadan days. It explains the engine's figures (`tawasul.domain.ticket_story`); a test holds its
totals equal to the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tawasul.domain.calendars import BusinessCalendar, to_us

__all__ = ["Breakdown", "BusinessSpan", "SkippedDay", "breakdown"]


@dataclass(frozen=True, slots=True)
class BusinessSpan:
    """A stretch of working time that counted: [start, end) and its length."""

    start: datetime
    end: datetime

    @property
    def business(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class SkippedDay:
    """A local date inside a stretch with no working time: `holiday` (with its name), `closed`
    (an extra closed date of the calendar) or `weekend` (no hours on that weekday)."""

    day: date
    reason: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Business time between two instants in one calendar, interval by interval."""

    start: datetime
    end: datetime
    spans: tuple[BusinessSpan, ...]
    skipped: tuple[SkippedDay, ...]
    ramadan_days: tuple[date, ...]
    """Dates of the stretch on which the calendar's Ramadan hours applied."""

    @property
    def business(self) -> timedelta:
        return sum((s.business for s in self.spans), timedelta(0))


def breakdown(cal: BusinessCalendar, start_us: int, end_us: int) -> Breakdown:
    """The working intervals of `cal` inside [start, end), the closed days skipped, the Ramadan days."""
    spans: list[BusinessSpan] = []
    skipped: list[SkippedDay] = []
    ramadan: list[date] = []
    if end_us > start_us:
        day = cal.instant(start_us).date()
        last = cal.instant(end_us - 1).date()
        while day <= last:
            hours = cal.day_hours(day)
            if not hours:
                skipped.append(_closed_day(cal, day))
            elif cal.ramadan_week is not None and cal.is_ramadan(day):
                ramadan.append(day)
            for s, e in cal.working_intervals(day):
                lo, hi = max(to_us(s), start_us), min(to_us(e), end_us)
                if hi > lo:
                    spans.append(BusinessSpan(cal.instant(lo), cal.instant(hi)))
            day += timedelta(days=1)
    return Breakdown(cal.instant(start_us), cal.instant(end_us), tuple(spans), tuple(skipped), tuple(ramadan))


def _closed_day(cal: BusinessCalendar, day: date) -> SkippedDay:
    if day in cal.closed:
        return SkippedDay(day, "closed")
    name = cal.holiday_name(day)
    if name is not None:
        return SkippedDay(day, "holiday", name)
    return SkippedDay(day, "weekend")

"""Business calendars: working hours, public holidays, Ramadan hours, exact business-time arithmetic.

All arithmetic runs on integer microseconds since the Unix epoch (`to_us`), so results are exact.
Per-day working intervals are computed once per date and cached in the calendar instance, and
whole days are skipped in one step, so adding 24 business hours touches only a few days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from hijridate import Gregorian

from tawasul.domain.errors import CalendarError

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TIMEZONE = "Asia/Dubai"
RAMADAN = 9
MAX_CLOSED_DAYS = 400
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
ONE_DAY = timedelta(days=1)
HOUR_US = 3_600_000_000
_MIXED_HOUR = -1
"""Marks a UTC hour holding a local midnight or an offset change (its local date is not constant)."""

Interval = tuple[int, int]
"""Seconds after local midnight: (start, end), end at most 86400 (`24:00`)."""
WeekHours = tuple[tuple[Interval, ...], ...]
"""Seven entries, Monday first."""
_Day = tuple[int, int, tuple[Interval, ...], int]
"""(midnight_us, next_midnight_us, absolute intervals in us, business us of the day)."""


def to_us(instant: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError(f"datetime must be timezone-aware, got {instant.isoformat()}")
    return (instant - EPOCH) // MICROSECOND


def from_us(us: int, zone: tzinfo) -> datetime:
    """The aware datetime in `zone` of microseconds since the epoch."""
    return (EPOCH + timedelta(microseconds=us)).astimezone(zone)


def parse_range(text: object, where: str = "") -> Interval:
    """Parse `"07:30-15:30"` into seconds after midnight; `24:00` may end a range."""
    prefix = f"{where}: " if where else ""
    if not isinstance(text, str) or text.count("-") != 1:
        raise CalendarError(f"{prefix}bad time range {text!r}, expected 'HH:MM-HH:MM'")
    start, end = (_parse_clock(part.strip(), text, prefix) for part in text.split("-"))
    if start >= end:
        raise CalendarError(f"{prefix}bad time range {text!r}: start must be before end")
    return start, end


def _parse_clock(part: str, text: str, prefix: str) -> int:
    pieces = part.split(":")
    if (
        len(pieces) != 2
        or not all(p.isascii() and p.isdigit() for p in pieces)
        or len(pieces[0]) > 2
        or len(pieces[1]) != 2
    ):
        raise CalendarError(f"{prefix}bad time range {text!r}, expected 'HH:MM-HH:MM'")
    hour, minute = int(pieces[0]), int(pieces[1])
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise CalendarError(f"{prefix}bad time range {text!r}: {part} is not a time of day")
    return hour * 3600 + minute * 60


def parse_week(hours: Mapping[str, Sequence[str]], where: str = "hours") -> WeekHours:
    """Parse `{"mon": ["07:30-12:00", "13:00-15:30"], ...}`; a missing day is closed."""
    if not isinstance(hours, Mapping):
        raise CalendarError(f"{where}: must be a mapping of weekday to time ranges")
    unknown = sorted(str(k) for k in hours if k not in WEEKDAYS)
    if unknown:
        raise CalendarError(f"{where}: unknown weekday {unknown[0]!r}, use {', '.join(WEEKDAYS)}")
    week: list[tuple[Interval, ...]] = []
    for day in WEEKDAYS:
        ranges = hours.get(day) or []
        if isinstance(ranges, str) or not isinstance(ranges, Sequence):
            raise CalendarError(f"{where}.{day}: must be a list of time ranges like ['07:30-15:30']")
        parsed = sorted(parse_range(r, f"{where}.{day}[{i}]") for i, r in enumerate(ranges))
        for (_, end), (start, _) in pairwise(parsed):
            if start < end:
                raise CalendarError(f"{where}.{day}: time ranges overlap")
        week.append(tuple(parsed))
    return tuple(week)


def _is_ramadan(day: date) -> bool:
    try:
        return Gregorian.fromdate(day).to_hijri().month == RAMADAN
    except OverflowError:  # outside the Umm al-Qura table (1924-2077)
        return False


class BusinessCalendar:
    """Working time of one organisation in one time zone.

    `hours` and `ramadan_hours` map weekday names to lists of `HH:MM-HH:MM` ranges;
    `ramadan_hours` replace `hours` from 1 Ramadan to the last day of Ramadan (Umm al-Qura).
    Public holidays come from the `holidays` library for `holidays_country`; `closed` adds
    closed dates, `workdays` reopens dates the library lists (e.g. a corrected Eid estimate).
    """

    __slots__ = (
        "name",
        "zone",
        "always_open",
        "week",
        "ramadan_week",
        "closed",
        "workdays",
        "_holidays",
        "_days",
        "_hour_dates",
    )

    def __init__(
        self,
        *,
        name: str = "",
        timezone: str = DEFAULT_TIMEZONE,
        hours: Mapping[str, Sequence[str]] | None = None,
        ramadan_hours: Mapping[str, Sequence[str]] | None = None,
        holidays_country: str | None = None,
        holidays_subdiv: str | None = None,
        closed: Iterable[date] = (),
        workdays: Iterable[date] = (),
        always_open: bool = False,
    ) -> None:
        self.name = name
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(f"timezone: unknown IANA time zone {timezone!r}") from exc
        self.always_open = always_open
        if always_open and (hours or ramadan_hours or holidays_country or closed):
            raise CalendarError("always_open: an always-open calendar takes no hours, holidays or closed dates")
        if not always_open and hours is None:
            raise CalendarError("hours: required unless always_open is true")
        self.week: WeekHours = parse_week(hours or {}, "hours")
        if not always_open and not any(self.week):
            raise CalendarError("hours: no working hours on any weekday")
        self.ramadan_week: WeekHours | None = (
            None if ramadan_hours is None else parse_week(ramadan_hours, "ramadan_hours")
        )
        self.closed = frozenset(closed)
        self.workdays = frozenset(workdays)
        self._holidays: holidays.HolidayBase | None = None
        if holidays_country is not None:
            try:
                self._holidays = holidays.country_holidays(holidays_country, subdiv=holidays_subdiv)
            except NotImplementedError as exc:
                raise CalendarError(f"holidays: unknown country or subdivision {holidays_country!r}") from exc
        self._days: dict[int, _Day] = {}
        """`_day` by date ordinal (the walks step through ordinals)."""
        self._hour_dates: dict[int, int] = {}
        """Local date ordinal of each UTC hour seen (`_MIXED_HOUR` when it is not constant)."""

    def __repr__(self) -> str:
        return f"BusinessCalendar(name={self.name!r}, timezone={self.zone.key!r})"

    # -- days -----------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        """True for a public holiday or an extra closed date (and not a listed workday)."""
        if day in self.workdays:
            return False
        return day in self.closed or (self._holidays is not None and day in self._holidays)

    def holiday_name(self, day: date) -> str | None:
        """The holiday library's name of `day` when it is a public holiday this calendar keeps closed."""
        if day in self.workdays or self._holidays is None:
            return None
        return self._holidays.get(day)

    def is_ramadan(self, day: date) -> bool:
        """True from 1 Ramadan to the last day of Ramadan (Umm al-Qura)."""
        return _is_ramadan(day)

    def day_hours(self, day: date) -> tuple[Interval, ...]:
        """The working intervals of a local date as seconds after midnight (empty when closed)."""
        if self.always_open:
            return ((0, 86400),)
        if self.is_holiday(day):
            return ()
        week = self.ramadan_week if self.ramadan_week is not None and _is_ramadan(day) else self.week
        return week[day.weekday()]

    def working_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of a local date as aware datetimes."""
        return [(from_us(s, self.zone), from_us(e, self.zone)) for s, e in self._day(day)[2]]

    def _day(self, day: date) -> _Day:
        return self._day_at(day.toordinal())

    def _day_at(self, ordinal: int) -> _Day:
        """(midnight, next midnight, working intervals, their total) of the local date with
        this ordinal, in us since the epoch."""
        cached = self._days.get(ordinal)
        if cached is None:
            day = date.fromordinal(ordinal)
            midnight = to_us(datetime.combine(day, time(), self.zone))
            next_midnight = to_us(datetime.combine(day + ONE_DAY, time(), self.zone))
            intervals = tuple(
                (s, e)
                for s, e in (
                    (self._local_us(day, start), self._local_us(day, end)) for start, end in self.day_hours(day)
                )
                if e > s
            )
            cached = (midnight, next_midnight, intervals, sum(e - s for s, e in intervals))
            self._days[ordinal] = cached
        return cached

    def _local_us(self, day: date, seconds: int) -> int:
        days, rest = divmod(seconds, 86400)
        local = datetime.combine(day + timedelta(days=days), time(rest // 3600, rest % 3600 // 60), self.zone)
        return to_us(local)

    def _local_date(self, us: int) -> date:
        # local midnights fall on whole seconds, so flooring to the second keeps the date
        return datetime.fromtimestamp(us // 1_000_000, self.zone).date()

    def _local_ordinal(self, us: int) -> int:
        """`_local_date(us).toordinal()`, cached per UTC hour.

        An hour with the same UTC offset and the same local date at its first and last second
        lies wholly in that date (the offset changes at most once within an hour, so it did not
        change, and local time runs forward); other hours are worked out per call.
        """
        hour = us // HOUR_US
        ordinal = self._hour_dates.get(hour)
        if ordinal is None:
            first = datetime.fromtimestamp(hour * 3600, self.zone)
            last = datetime.fromtimestamp(hour * 3600 + 3599, self.zone)
            ordinal = first.toordinal()
            if last.toordinal() != ordinal or last.utcoffset() != first.utcoffset():
                ordinal = _MIXED_HOUR
            self._hour_dates[hour] = ordinal
        if ordinal == _MIXED_HOUR:
            return self._local_date(us).toordinal()
        return ordinal

    # -- arithmetic on microseconds -------------------------------------------------------

    def elapsed_us(self, start: int, end: int) -> int:
        """Business microseconds between two instants (0 when end <= start)."""
        if end <= start:
            return 0
        if self.always_open:
            return end - start
        total = 0
        ordinal = self._local_ordinal(start)
        days = self._days
        while True:
            midnight, _, intervals, day_total = days.get(ordinal) or self._day_at(ordinal)
            if midnight >= end:
                return total
            if intervals:
                if start <= intervals[0][0] and intervals[-1][1] <= end:
                    total += day_total
                else:
                    for s, e in intervals:
                        lo = s if s > start else start
                        hi = e if e < end else end
                        if hi > lo:
                            total += hi - lo
            ordinal += 1

    def add_us(self, start: int, business: int) -> int:
        """The earliest instant at which `business` microseconds of business time have elapsed."""
        return self._walk(start, business)[0]

    def limit_us(self, start: int, business: int) -> tuple[int, int]:
        """(`add_us(start, business)`, the first instant with more than `business` elapsed).

        The second is `add_us(start, business + 1)`, found in the same walk when possible.
        """
        reached, at_end = self._walk(start, business)
        return reached, (self._walk(reached, 1)[0] if at_end else reached + 1)

    def _walk(self, start: int, business: int) -> tuple[int, bool]:
        """`add_us` and whether the instant ends a working interval (or is the closed start)."""
        if business < 0:
            raise CalendarError(f"business time must not be negative, got {business} us")
        if self.always_open:
            return start + business, False
        if business == 0:
            return start, True
        remaining = business
        ordinal = self._local_ordinal(start)
        days = self._days
        closed_run = 0
        while True:
            _, _, intervals, day_total = days.get(ordinal) or self._day_at(ordinal)
            if intervals and intervals[-1][1] > start:
                closed_run = 0
                if start <= intervals[0][0] and day_total < remaining:
                    remaining -= day_total
                else:
                    for s, e in intervals:
                        if e <= start:
                            continue
                        lo = s if s > start else start
                        if e - lo >= remaining:
                            return lo + remaining, lo + remaining == e
                        remaining -= e - lo
            else:
                closed_run += 1
                if closed_run > MAX_CLOSED_DAYS:
                    raise CalendarError(f"calendar {self.name!r}: no working time for {MAX_CLOSED_DAYS} days")
            ordinal += 1

    # -- arithmetic on datetimes ----------------------------------------------------------

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two aware instants; zero when `end <= start`."""
        return timedelta(microseconds=self.elapsed_us(to_us(start), to_us(end)))

    def add(self, start: datetime, business: timedelta) -> datetime:
        """The instant, in this calendar's zone, at which `business` time will have elapsed."""
        return from_us(self.add_us(to_us(start), business // MICROSECOND), self.zone)

    def is_open(self, instant: datetime) -> bool:
        """True when `instant` falls inside working hours."""
        us = to_us(instant)
        return any(s <= us < e for s, e in self._day(self._local_date(us))[2])

    def instant(self, us: int) -> datetime:
        """Microseconds since the epoch as an aware datetime in this calendar's zone."""
        return from_us(us, self.zone)

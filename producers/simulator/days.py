"""Day types (working day, Friday, weekend, public holiday; Ramadan) and epoch helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum

import holidays
from hijridate import Gregorian

OFFSET_SECONDS = 4 * 3600
"""Asia/Dubai is UTC+4 without daylight saving."""
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_RAMADAN = 9


class DayKind(Enum):
    """How a day is treated by the government working week."""

    WORKDAY = "workday"
    FRIDAY = "friday"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"


@dataclass(frozen=True)
class DayInfo:
    """A local (Asia/Dubai) calendar day."""

    day: date
    kind: DayKind
    ramadan: bool
    start: int
    """Epoch seconds of 00:00 local time."""

    @property
    def month(self) -> int:
        return self.day.month


def day_start(day: date) -> int:
    """Epoch seconds of 00:00 Asia/Dubai on `day`."""
    return (day.toordinal() - _EPOCH_ORDINAL) * 86400 - OFFSET_SECONDS


def local_date(epoch: float) -> date:
    """The Asia/Dubai date of an epoch instant."""
    return date.fromordinal(int((epoch + OFFSET_SECONDS) // 86400) + _EPOCH_ORDINAL)


def is_ramadan(day: date) -> bool:
    """True from 1 to the last day of Ramadan (Umm al-Qura calendar via hijridate)."""
    return Gregorian(day.year, day.month, day.day).to_hijri().month == _RAMADAN


class Almanac:
    """Classifies days with the UAE public holidays and the Hijri calendar (memoised)."""

    def __init__(self) -> None:
        self._days: dict[date, DayInfo] = {}
        self._holidays: dict[int, holidays.HolidayBase] = {}

    def info(self, day: date) -> DayInfo:
        found = self._days.get(day)
        if found is None:
            found = DayInfo(day, self._kind(day), is_ramadan(day), day_start(day))
            self._days[day] = found
        return found

    def _kind(self, day: date) -> DayKind:
        year = self._holidays.get(day.year)
        if year is None:
            year = holidays.country_holidays("AE", years=day.year)
            self._holidays[day.year] = year
        if day in year:
            return DayKind.HOLIDAY
        weekday = day.weekday()
        if weekday >= 5:
            return DayKind.WEEKEND
        return DayKind.FRIDAY if weekday == 4 else DayKind.WORKDAY

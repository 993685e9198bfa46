"""Business-time arithmetic for the simulated back offices (own small copy, no domain import)."""

from __future__ import annotations

from datetime import timedelta

from .days import Almanac, DayInfo, DayKind, local_date

Window = tuple[int, int]
"""Minutes after local midnight: [start, end)."""

GOV_HOURS: dict[DayKind, tuple[Window, ...]] = {
    DayKind.WORKDAY: ((7 * 60 + 30, 15 * 60 + 30),),
    DayKind.FRIDAY: ((7 * 60 + 30, 12 * 60),),
}
GOV_RAMADAN_HOURS: dict[DayKind, tuple[Window, ...]] = {
    DayKind.WORKDAY: ((9 * 60, 14 * 60 + 30),),
    DayKind.FRIDAY: ((9 * 60, 12 * 60),),
}
_MAX_DAYS = 400


class BusinessCalendar:
    """`gov` (the government working week, shorter in Ramadan) or `always` (24/7)."""

    def __init__(self, name: str, almanac: Almanac) -> None:
        if name not in ("gov", "always"):
            raise ValueError(f"unknown calendar {name!r}")
        self.name = name
        self._almanac = almanac

    def windows(self, info: DayInfo) -> tuple[Window, ...]:
        """Open windows of a day, in minutes after midnight."""
        if self.name == "always":
            return ((0, 24 * 60),)
        table = GOV_RAMADAN_HOURS if info.ramadan else GOV_HOURS
        return table.get(info.kind, ())

    def add(self, start: float, business_seconds: float) -> float:
        """The instant when `business_seconds` of open time have elapsed after `start`."""
        if self.name == "always":
            return start + business_seconds
        left = business_seconds
        moment = start
        day = local_date(start)
        for _ in range(_MAX_DAYS):
            info = self._almanac.info(day)
            for open_minute, close_minute in self.windows(info):
                opens = info.start + open_minute * 60
                closes = info.start + close_minute * 60
                if moment >= closes:
                    continue
                begin = max(moment, opens)
                if left <= closes - begin:
                    return begin + left
                left -= closes - begin
                moment = closes
            day = day + timedelta(days=1)
        raise ValueError("no open business time within a year")

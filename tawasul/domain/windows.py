"""Event-time KPI windows over buckets: rolling 15 min … 30 days, calendar day / month / half-year.

Instants are integer microseconds since the Unix epoch (as in `tawasul.domain.calendars`).
Every contribution lands in one bucket per resolution, chosen by its own event time:

* minute buckets (UTC minutes) serve `15m` and `1h`;
* hour buckets (UTC hours, which are also Asia/Dubai hours: +04:00, no daylight saving)
  serve `24h`, `7d` and `30d`;
* day buckets (Asia/Dubai calendar dates) serve `today`, `month` and `half_year`.

A rolling window of length L and bucket size b, seen at `as_of`, is the half-open span
`[end - L, end)` with `end` the end of the bucket holding `as_of`: the last L/b buckets,
the current one included. A calendar window is the whole Asia/Dubai day, month or half-year
(January–June, July–December) holding `as_of`. `WindowedSums` keeps per-bucket totals and
the running total of every window, updated in O(windows) per contribution.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Generic, Protocol, Self, TypeVar
from zoneinfo import ZoneInfo

from tawasul.domain.errors import DomainError

__all__ = [
    "DUBAI",
    "NOW",
    "RESOLUTIONS",
    "WINDOWS",
    "WINDOW_NAMES",
    "Resolution",
    "Window",
    "WindowError",
    "WindowedSums",
    "bucket_of",
    "bucket_start_us",
    "bucket_ids",
    "from_us",
    "retention_floor",
    "retention_floors",
    "to_us",
    "window",
    "window_range",
    "window_ranges",
    "window_span",
]

DUBAI = ZoneInfo("Asia/Dubai")
NOW = "now"
"""The window name of instantaneous figures (calls waiting now, open tickets, ...)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US


class WindowError(DomainError, ValueError):
    """An unknown window name or a naive datetime."""


class Resolution(Enum):
    """Bucket size: a UTC minute, a UTC hour or an Asia/Dubai calendar day."""

    MINUTE = "m"
    HOUR = "h"
    DAY = "d"


RESOLUTIONS: tuple[Resolution, ...] = (Resolution.MINUTE, Resolution.HOUR, Resolution.DAY)


@dataclass(frozen=True, slots=True)
class Window:
    """A named window: rolling (`length` buckets) or calendar (`calendar` = day|month|half_year)."""

    name: str
    resolution: Resolution
    length: int = 0
    calendar: str = ""


WINDOWS: tuple[Window, ...] = (
    Window("15m", Resolution.MINUTE, 15),
    Window("1h", Resolution.MINUTE, 60),
    Window("24h", Resolution.HOUR, 24),
    Window("7d", Resolution.HOUR, 7 * 24),
    Window("30d", Resolution.HOUR, 30 * 24),
    Window("today", Resolution.DAY, calendar="day"),
    Window("month", Resolution.DAY, calendar="month"),
    Window("half_year", Resolution.DAY, calendar="half_year"),
)
WINDOW_NAMES: tuple[str, ...] = tuple(w.name for w in WINDOWS)
_BY_NAME = {w.name: w for w in WINDOWS}


def window(name: str) -> Window:
    """The window called `name` (`15m`, `1h`, `24h`, `7d`, `30d`, `today`, `month`, `half_year`)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise WindowError(f"unknown window {name!r} (known: {', '.join(WINDOW_NAMES)})") from None


def to_us(instant: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise WindowError("datetime must be timezone-aware")
    return (instant - _EPOCH) // _US


def from_us(us: int, zone: ZoneInfo = DUBAI) -> datetime:
    """The aware datetime in `zone` (Asia/Dubai by default) of microseconds since the epoch."""
    return (_EPOCH + timedelta(microseconds=us)).astimezone(zone)


def _dubai_date(us: int) -> date:
    return from_us(us, DUBAI).date()


def _midnight_us(day: date) -> int:
    return to_us(datetime(day.year, day.month, day.day, tzinfo=DUBAI))


def bucket_of(us: int, resolution: Resolution) -> int:
    """The bucket id holding instant `us`: epoch minute, epoch hour or Dubai date ordinal."""
    if resolution is Resolution.MINUTE:
        return us // MINUTE_US
    if resolution is Resolution.HOUR:
        return us // HOUR_US
    return _dubai_date(us).toordinal()


def bucket_ids(us: int) -> tuple[int, int, int]:
    """The (minute, hour, day) bucket ids of instant `us`, in `RESOLUTIONS` order."""
    return us // MINUTE_US, us // HOUR_US, _dubai_date(us).toordinal()


def bucket_start_us(bucket: int, resolution: Resolution) -> int:
    """The first instant of a bucket."""
    if resolution is Resolution.MINUTE:
        return bucket * MINUTE_US
    if resolution is Resolution.HOUR:
        return bucket * HOUR_US
    return _midnight_us(date.fromordinal(bucket))


def _calendar_range(calendar: str, today: date) -> tuple[int, int]:
    if calendar == "day":
        first = last = today
    elif calendar == "month":
        first = today.replace(day=1)
        following = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        last = following - timedelta(days=1)
    else:
        first = date(today.year, 1 if today.month <= 6 else 7, 1)
        last = date(today.year, 6, 30) if today.month <= 6 else date(today.year, 12, 31)
    return first.toordinal(), last.toordinal()


def window_range(win: Window, as_of_us: int) -> tuple[int, int]:
    """The first and last bucket id (inclusive) of `win` seen at `as_of_us`."""
    if win.calendar:
        return _calendar_range(win.calendar, _dubai_date(as_of_us))
    last = bucket_of(as_of_us, win.resolution)
    return last - win.length + 1, last


def window_span(win: Window | str, as_of: datetime | int) -> tuple[datetime, datetime]:
    """The half-open event-time span `[start, end)` of a window at `as_of`, in Asia/Dubai time."""
    w = window(win) if isinstance(win, str) else win
    at = as_of if isinstance(as_of, int) else to_us(as_of)
    first, last = window_range(w, at)
    start = bucket_start_us(first, w.resolution)
    end = bucket_start_us(last + 1, w.resolution)
    return from_us(start), from_us(end)


def retention_floor(resolution: Resolution, as_of_us: int) -> int:
    """The oldest bucket of `resolution` any window can still need once time reaches `as_of_us`."""
    return min(window_range(w, as_of_us)[0] for w in WINDOWS if w.resolution is resolution)


def window_ranges(as_of_us: int) -> dict[str, tuple[int, int]]:
    """`window_range` of every window at `as_of_us`, by name."""
    return {w.name: window_range(w, as_of_us) for w in WINDOWS}


def retention_floors(as_of_us: int) -> dict[Resolution, int]:
    """`retention_floor` of every resolution at `as_of_us`."""
    ranges = window_ranges(as_of_us)
    return {r: min(ranges[w.name][0] for w in WINDOWS if w.resolution is r) for r in RESOLUTIONS}


class Summable(Protocol):
    """What `WindowedSums` adds up: an immutable value with +, - and truthiness (zero is false)."""

    def __add__(self, other: Self, /) -> Self: ...

    def __sub__(self, other: Self, /) -> Self: ...

    def __bool__(self) -> bool: ...


T = TypeVar("T", bound=Summable)


class WindowedSums(Generic[T]):
    """Per-bucket totals of one scope and the running total of every window.

    `add(us, value)` puts a (possibly negative) contribution into the buckets of instant `us`;
    `advance(as_of_us)` moves the windows (time never goes back: an earlier instant is ignored)
    and drops buckets no window can reach any more. A contribution older than every window is
    ignored, so late data outside all windows changes nothing.
    """

    __slots__ = ("_as_of", "_buckets", "_floors", "_ranges", "_sums", "_zero")

    def __init__(self, zero: T, as_of_us: int) -> None:
        self._zero = zero
        self._as_of = as_of_us
        self._buckets: tuple[dict[int, T], ...] = tuple({} for _ in RESOLUTIONS)
        self._ranges: dict[str, tuple[int, int]] = window_ranges(as_of_us)
        self._sums: dict[str, T] = {w.name: zero for w in WINDOWS}
        self._floors = list(retention_floors(as_of_us).values())

    @property
    def as_of_us(self) -> int:
        return self._as_of

    def __bool__(self) -> bool:
        """False when no bucket holds anything (the scope can be dropped)."""
        return any(self._buckets)

    def total(self, name: str) -> T:
        """The running total of window `name` at the current `as_of`."""
        return self._sums[name]

    def totals(self) -> Iterator[tuple[str, T]]:
        """(window name, total) for every window, in `WINDOWS` order."""
        return iter(self._sums.items())

    def buckets(self, resolution: Resolution) -> dict[int, T]:
        """A copy of the non-empty buckets of one resolution."""
        return dict(self._buckets[RESOLUTIONS.index(resolution)])

    def add(self, us: int, value: T, ids: tuple[int, int, int] | None = None) -> None:
        """Add `value` to the buckets of instant `us` (`ids` = `bucket_ids(us)` when known)."""
        if not value:
            return
        ranges, sums, floors, buckets = self._ranges, self._sums, self._floors, self._buckets
        for floor, store, bucket, names in zip(floors, buckets, ids or bucket_ids(us), _NAMES, strict=True):
            if bucket < floor:
                continue
            current = store.get(bucket)
            updated = value if current is None else current + value
            if updated:
                store[bucket] = updated
            else:
                del store[bucket]
            for name in names:
                first, last = ranges[name]
                if first <= bucket <= last:
                    sums[name] = sums[name] + value

    def advance(
        self,
        as_of_us: int,
        ranges: dict[str, tuple[int, int]] | None = None,
        floors: dict[Resolution, int] | None = None,
    ) -> bool:
        """Move every window to `as_of_us`; returns True when any window total may have changed.

        `ranges` (`window_ranges(as_of_us)`) and `floors` (`retention_floors(as_of_us)`) may be
        passed in when many scopes advance to the same instant.
        """
        if as_of_us <= self._as_of:
            return False
        self._as_of = as_of_us
        ranges = ranges or window_ranges(as_of_us)
        moved = False
        for w in WINDOWS:
            old, new = self._ranges[w.name], ranges[w.name]
            if new != old:
                self._ranges[w.name] = new
                self._sums[w.name] = self._slide(w, old, new)
                moved = True
        for index, floor in enumerate((floors or retention_floors(as_of_us)).values()):
            if floor != self._floors[index]:
                self._floors[index] = floor
                store = self._buckets[index]
                for bucket in [b for b in store if b < floor]:
                    del store[bucket]
        return moved

    def _slide(self, w: Window, old: tuple[int, int], new: tuple[int, int]) -> T:
        """The total of `new`: the old total minus the buckets that left plus those that came in."""
        shift = new[0] - old[0]
        if w.calendar or not 0 < shift <= 4 or shift != new[1] - old[1]:
            return self._sum_range(w.resolution, new)
        store = self._buckets[RESOLUTIONS.index(w.resolution)]
        total = self._sums[w.name]
        for bucket in range(old[0], new[0]):
            value = store.get(bucket)
            if value is not None:
                total = total - value
        for bucket in range(old[1] + 1, new[1] + 1):
            value = store.get(bucket)
            if value is not None:
                total = total + value
        return total

    def _sum_range(self, resolution: Resolution, span: tuple[int, int]) -> T:
        first, last = span
        store = self._buckets[RESOLUTIONS.index(resolution)]
        total = self._zero
        if last - first + 1 <= len(store):
            for bucket in range(first, last + 1):
                value = store.get(bucket)
                if value is not None:
                    total = total + value
        else:
            for bucket, value in store.items():
                if first <= bucket <= last:
                    total = total + value
        return total


_NAMES: tuple[tuple[str, ...], ...] = tuple(tuple(w.name for w in WINDOWS if w.resolution is r) for r in RESOLUTIONS)
"""The window names of each resolution, in `RESOLUTIONS` order."""

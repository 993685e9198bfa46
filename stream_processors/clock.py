"""The two clocks of the stream processors (contract section 4).

Live workers use the wall clock. Replay uses an event-time watermark per input partition:
the maximum event time seen on that partition minus the allowed lateness. A watermark only
moves forward; the end-of-input marker of a replay moves it to the end of the input.
Instants are integer microseconds since the epoch, as in `tawasul.domain`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from tawasul.domain.calendars import to_us

DEFAULT_LATENESS = timedelta(minutes=5)


class ClockError(ValueError):
    """A clock was given an impossible setting."""


class WallClock:
    """The wall clock in microseconds; `source` (seconds since the epoch) can be replaced in tests."""

    __slots__ = ("_source",)

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source

    def now_us(self) -> int:
        return int(self._source() * 1_000_000)


class Watermarks:
    """Per-partition event-time watermarks: max event time seen minus the allowed lateness."""

    __slots__ = ("_lateness_us", "_marks")

    def __init__(self, lateness: timedelta = DEFAULT_LATENESS) -> None:
        if lateness < timedelta(0):
            raise ClockError("lateness must not be negative")
        self._lateness_us = lateness // timedelta(microseconds=1)
        self._marks: dict[int, int] = {}

    @property
    def lateness_us(self) -> int:
        return self._lateness_us

    def get(self, partition: int) -> int | None:
        """The partition's watermark, or None before its first event."""
        return self._marks.get(partition)

    def observe(self, partition: int, event_time: datetime | int) -> int:
        """Take an event's time into account; returns the (never decreasing) watermark."""
        at = event_time if isinstance(event_time, int) else to_us(event_time)
        return self.advance(partition, at - self._lateness_us)

    def advance(self, partition: int, watermark_us: int) -> int:
        """Move the watermark to at least `watermark_us` (end-of-input markers); returns it."""
        current = self._marks.get(partition)
        if current is None or watermark_us > current:
            self._marks[partition] = watermark_us
            return watermark_us
        return current

    def forget(self, partition: int) -> None:
        """Drop a partition (revoked from this worker)."""
        self._marks.pop(partition, None)

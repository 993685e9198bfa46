"""The two clocks of the stream processors (contract section 4).

Live workers use the wall clock. Replay uses an event-time watermark per input partition:
the maximum event time seen on that partition minus the allowed lateness. A watermark only
moves forward; the end-of-input marker of a replay moves it to the end of the input.
Instants are integer microseconds since the epoch, as in `tawasul.domain`.
"""

from __future__ import annotations

import json
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


class EndOfInput:
    """End-of-input markers of a replay, held until their partition's events are read.

    A marker names the end offset of its events partition when it was sent; it comes on
    another topic, so it may overtake the last events. It takes effect only once every event
    before that offset has been read (`read`), so no deadline fires ahead of an event that was
    already published.
    """

    __slots__ = ("_held", "_next")

    def __init__(self) -> None:
        self._next: dict[int, int] = {}
        self._held: dict[int, tuple[int, int]] = {}

    def knows(self, partition: int) -> bool:
        """True once the partition's read position is known (an event read, or `read_up_to`)."""
        return partition in self._next

    def read_up_to(self, partition: int, next_offset: int) -> int | None:
        """Events before `next_offset` were read (or processed before a restart); returns the
        watermark of a held marker that now takes effect."""
        if next_offset > self._next.get(partition, -1):
            self._next[partition] = next_offset
        held = self._held.get(partition)
        if held is not None and self._next[partition] >= held[1]:
            del self._held[partition]
            return held[0]
        return None

    def read(self, partition: int, offset: int) -> int | None:
        """The event at `offset` was read; see `read_up_to`."""
        return self.read_up_to(partition, offset + 1)

    def arrived(self, partition: int, at_us: int, events_end: int | None) -> int | None:
        """A marker arrived: its watermark if it takes effect now, else None (held)."""
        if events_end is None or self._next.get(partition, 0) >= events_end:
            return at_us
        held = self._held.get(partition)
        self._held[partition] = (max(at_us, held[0]) if held else at_us, max(events_end, held[1]) if held else events_end)
        return None


def watermark_message(at: datetime, events_end: int | None = None) -> bytes:
    """The end-of-input marker a replay driver sends to every partition of the ticks topic;
    `events_end` is the end offset of the same events partition when it was sent."""
    body: dict[str, object] = {"kind": "watermark", "time": at.isoformat()}
    if events_end is not None:
        body["events_end"] = events_end
    return json.dumps(body).encode()


def read_tick(value: bytes) -> tuple[str, int | None, int | None]:
    """(kind, watermark µs or None, events end offset or None) of a ticks-topic message."""
    body = json.loads(value)
    kind = str(body["kind"])
    if kind != "watermark":
        return kind, None, None
    end = body.get("events_end")
    return kind, to_us(datetime.fromisoformat(body["time"])), None if end is None else int(end)

"""The two clocks of the stream processors (contract section 4).

Live workers use the wall clock once a partition is caught up, and the replay's watermark while
it catches up (`LiveClock`). Replay uses an event-time watermark per input partition:
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


HISTORY_SETTLE = timedelta(seconds=5)
"""How long after reading a backdated event a live partition keeps the event-time clock."""


class LiveClock:
    """The SLA clock of each partition of a live worker: the wall clock, but never ahead of what
    the partition has provably read (contract section 4, docs/sla.md "Live clock").

    A partition is *catching up* while the worker has not processed every event before its end
    offset (high-water mark), or while it reads history: events published more than the allowed
    lateness after their time (a backlog published into a live worker), until `settle` of wall
    time after the last such event. While catching up its clock is the event-time watermark,
    exactly as in replay (`Watermarks`: newest event time minus the lateness); once caught up,
    the wall clock. A restart, a rebalance, a lag spike and history published into a running
    worker all follow from this. Pure: the caller tells it what it read and the end offsets.
    """

    __slots__ = ("watermarks", "_next", "_history_until", "_lateness_us", "_settle_us")

    def __init__(self, lateness: timedelta = DEFAULT_LATENESS, settle: timedelta = HISTORY_SETTLE) -> None:
        self.watermarks = Watermarks(lateness)
        self._lateness_us = self.watermarks.lateness_us
        self._settle_us = settle // timedelta(microseconds=1)
        self._next: dict[int, int] = {}
        self._history_until: dict[int, int] = {}

    def start_at(self, partition: int, next_offset: int) -> None:
        """Every event before `next_offset` was processed (the group's committed offset after an
        assignment)."""
        if next_offset > self._next.get(partition, -1):
            self._next[partition] = next_offset

    def read(self, partition: int, offset: int, event_us: int | None, published_us: int, wall_us: int) -> None:
        """The event at `offset` was processed (`event_us` None: an unreadable one, skipped);
        `published_us` is its Kafka timestamp, `wall_us` the wall clock now."""
        self.start_at(partition, offset + 1)
        if event_us is None:
            return
        self.watermarks.observe(partition, event_us)
        if published_us - event_us > self._lateness_us:
            self._history_until[partition] = wall_us + self._settle_us

    def caught_up(self, partition: int, end_offset: int | None, wall_us: int) -> bool:
        """True when every event before `end_offset` was processed and no history is being read."""
        position = self._next.get(partition)
        if end_offset is None or position is None or position < end_offset:
            return False
        return wall_us >= self._history_until.get(partition, wall_us)

    def now_us(self, partition: int, end_offset: int | None, wall_us: int) -> int | None:
        """The partition's SLA clock: `wall_us` once caught up, else its watermark (None before
        its first event), never ahead of the wall clock."""
        if self.caught_up(partition, end_offset, wall_us):
            return wall_us
        mark = self.watermarks.get(partition)
        return None if mark is None else min(mark, wall_us)

    def forget(self, partition: int) -> None:
        """Drop a partition (revoked from this worker)."""
        self.watermarks.forget(partition)
        self._next.pop(partition, None)
        self._history_until.pop(partition, None)


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
        self._held[partition] = (
            max(at_us, held[0]) if held else at_us,
            max(events_end, held[1]) if held else events_end,
        )
        return None


def watermark_message(at: datetime, events_end: int | None = None, run: str | None = None) -> bytes:
    """The end-of-input marker a replay driver sends to every partition of the ticks topic;
    `events_end` is the end offset of the same events partition when it was sent, `run` the
    replay run's id (its topic prefix): the faust SLA agent only obeys the markers of its run."""
    body: dict[str, object] = {"kind": "watermark", "time": at.isoformat()}
    if events_end is not None:
        body["events_end"] = events_end
    if run is not None:
        body["run"] = run
    return json.dumps(body).encode()


def tick_run(value: bytes) -> str | None:
    """The run id a ticks-topic message carries (None: none)."""
    run = json.loads(value).get("run")
    return run if isinstance(run, str) else None


def read_tick(value: bytes) -> tuple[str, int | None, int | None]:
    """(kind, watermark µs or None, events end offset or None) of a ticks-topic message."""
    body = json.loads(value)
    kind = str(body["kind"])
    if kind != "watermark":
        return kind, None, None
    end = body.get("events_end")
    return kind, to_us(datetime.fromisoformat(body["time"])), None if end is None else int(end)

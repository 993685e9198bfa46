"""The clocks of one ticket, derived from its sorted events, and their measurement in business time.

Pure functions on integer microseconds since the epoch; `sla.py` builds the public API on them.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import NamedTuple

from tawasul.domain.calendars import BusinessCalendar

OPENED, PRIORITY, ASSIGNED, PAUSED, RESUMED, ACKNOWLEDGED, RESOLVED, REOPENED, CLOSED = range(9)
RANKS: dict[str, int] = {
    "ticket.opened": OPENED,
    "ticket.priority_changed": PRIORITY,
    "ticket.assigned": ASSIGNED,
    "ticket.paused": PAUSED,
    "ticket.resumed": RESUMED,
    "ticket.acknowledged": ACKNOWLEDGED,
    "ticket.resolved": RESOLVED,
    "ticket.reopened": REOPENED,
    "ticket.closed": CLOSED,
}
"""Event types in the order applied when several share one instant (then by event id)."""

Profile = tuple[str, str, str, str, "str | None"]
"""What a policy matches: (channel, kind, category, priority, department)."""
Payload = Profile | str | None


class Mark(NamedTuple):
    """A stored ticket event. A tuple, so marks sort by time, then rank, then id, and compare
    equal to the plain 4-tuples of earlier code."""

    at: int
    """The event's time, microseconds since the epoch."""
    rank: int
    """The rank of its type (`RANKS`)."""
    id: str
    """The event id."""
    payload: Payload
    """The profile (`ticket.opened`), the new priority (`ticket.priority_changed`), or None."""


Segment = tuple[int, "int | None", int]
"""A running stretch of a clock: (start, end or None while running, resolution cycle)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """A clock stopping: `segments` counts the segments before it; `priority` is in force then."""

    time: int
    cycle: int
    segments: int
    priority: str


@dataclass(slots=True)
class Clock:
    """One target's clock: running segments, stops, and whether it is finally stopped."""

    segments: list[Segment] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    done: bool = False
    start: int | None = None

    def halt(self, at: int, cycle: int) -> None:
        """Close the running segment, if any (pause or stop)."""
        if self.start is not None:
            self.segments.append((self.start, at, cycle))
            self.start = None

    def stop(self, at: int, cycle: int, priority: str) -> None:
        """Stop the clock for good (until a reopening) and record the stop."""
        if not self.done:
            self.done = True
            self.halt(at, cycle)
            self.stops.append(Stop(at, cycle, len(self.segments), priority))


@dataclass(slots=True)
class Timeline:
    """Both clocks of a ticket after its events up to a horizon."""

    opened: int
    profile: Profile
    priority: str
    paused: bool
    clocks: dict[str, Clock]

    def profile_with(self, priority: str) -> Profile:
        channel, kind, category, _, department = self.profile
        return channel, kind, category, priority, department


def build_timeline(marks: tuple[Mark, ...], until: int | None = None) -> Timeline | None:
    """Replay sorted marks (those before `until` only); None while the ticket is not opened."""
    if until is not None:
        marks = marks[: bisect_left(marks, (until,))]  # (until,) sorts before every mark at `until`
    opened = next((m for m in marks if m.rank == OPENED), None)
    if opened is None or not isinstance(opened.payload, tuple):
        return None
    t0, profile = opened.at, opened.payload
    first, res = Clock(start=t0), Clock(start=t0)
    priority, paused, cycle = profile[3], False, 0
    for time, rank, _, payload in marks:
        if rank == ASSIGNED or rank == OPENED:  # they move no clock
            continue
        at = time if time > t0 else t0
        if rank == PRIORITY and isinstance(payload, str):
            priority = payload
        elif rank == PAUSED and not paused:
            paused = True
            first.halt(at, 0)
            res.halt(at, cycle)
        elif rank == RESUMED and paused:
            paused = False
            if not first.done:
                first.start = at
            if not res.done:
                res.start = at
        elif rank == ACKNOWLEDGED:
            if not first.done:
                first.stop(at, 0, priority)
        elif rank == RESOLVED or rank == CLOSED:
            if not first.done:
                first.stop(at, 0, priority)
            if not res.done:
                res.stop(at, cycle, priority)
            if rank == CLOSED:
                break
        elif rank == REOPENED and res.done:
            res.done = False
            cycle += 1
            if not paused:
                res.start = at
    for clock in (first, res):
        if clock.start is not None:
            clock.segments.append((clock.start, None, cycle))
    return Timeline(t0, profile, priority, paused, {"first_response": first, "resolution": res})


@dataclass(frozen=True, slots=True)
class Crossing:
    """An instant a clock crossed a limit while running, the deadline then, and the cycle."""

    fire: int
    deadline: int
    cycle: int


@dataclass(frozen=True, slots=True)
class Measure:
    """Business time of a clock: cumulative at each segment end, warning and breach crossings.

    `warning.fire` is the earliest instant the warning share was reached; `breach.fire` is the
    first microsecond with more than the limit elapsed, `breach.deadline` the instant the limit
    was reached.
    """

    ends: tuple[int, ...]
    warning: Crossing | None
    breach: Crossing | None


def measure(
    cal: BusinessCalendar, limit: int, warn: int | None, segments: list[Segment], horizon: int | None = None
) -> Measure:
    """Walk the segments; a running segment ends at `horizon`, or never when it is None."""
    ends: list[int] = []
    warning: Crossing | None = None
    breach: Crossing | None = None
    total = 0
    for start, end, cycle in segments:
        before = total
        stop = end if end is not None else horizon
        endless = stop is None
        if stop is not None:
            total += cal.elapsed_us(start, stop)
            ends.append(total)
        deadline: int | None = None
        if breach is None and (endless or total > limit):
            rest = max(0, limit - before)
            deadline, fire = cal.limit_us(start, rest)
            breach = Crossing(fire, deadline, cycle)
        if warn is not None and warning is None and (endless or total > warn):
            if deadline is None:
                deadline = cal.add_us(start, max(0, limit - before))
            warning = Crossing(cal.add_us(start, max(0, warn - before)), deadline, cycle)
    return Measure(tuple(ends), warning, breach)


def projected_deadline(
    cal: BusinessCalendar, limit: int, segments: list[Segment], ends: tuple[int, ...], count: int, opened: int
) -> int:
    """The deadline as it stood at the end of the first `count` segments (no pause after)."""
    if count == 0:
        return cal.add_us(opened, limit)
    before = ends[count - 2] if count >= 2 else 0
    return cal.add_us(segments[count - 1][0], max(0, limit - before))

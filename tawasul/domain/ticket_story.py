"""A ticket's whole SLA story, pure: its events, the policy chosen, the business time counted,
what was skipped, each deadline and warning and how it was computed, and the outcomes.

```python
story = build_story("T-1", events, book, at)       # events: the ticket's stored events
story.to_json()
```

The records of the business time counted are in `business_breakdown`, the JSON view in
`ticket_story_json` (both re-exported here).

Everything is derived with the engine's own code: the clocks with `sla_timeline.build_timeline`
and `measure`, the statuses and deadlines with `sla.evaluate_us`, the outcomes by folding the
events in event-time order with `sla.apply` and firing `sla.due_us` before each one and at `at`,
as the replay engine does (`stream_processors.sla_step.advance`). The breakdown into working
intervals only explains those figures; a test holds its totals equal to the engine's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from tawasul.domain import sla
from tawasul.domain.business_breakdown import Breakdown, BusinessSpan, SkippedDay, breakdown
from tawasul.domain.calendars import BusinessCalendar, from_us, to_us
from tawasul.domain.policies import Match, Policy, PolicyBook
from tawasul.domain.sla_state import UNDECIDED, SlaOutcome, TicketSla
from tawasul.domain.sla_timeline import RANKS, Segment, build_timeline, measure
from tawasul.domain.ticket_story_json import (
    StoredOutcome,
    compare_outcomes,
    duration_text,
    event_json,
    outcome_json,
    target_json,
)

__all__ = [
    "BusinessSpan",
    "Breakdown",
    "ClockSegment",
    "DeadlineBasis",
    "PolicyChoice",
    "SkippedDay",
    "StoredOutcome",
    "StoryEvent",
    "TargetStory",
    "TicketStory",
    "breakdown",
    "build_story",
    "compare_outcomes",
    "duration_text",
]

EVENT_DETAILS: tuple[str, ...] = (
    "channel",
    "kind",
    "category",
    "priority",
    "department",
    "team",
    "agent",
    "reason",
    "resolution",
)
"""The `data` fields shown beside an event (codes and names, no personal data)."""
STATUS_PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class StoryEvent:
    """One stored event of the ticket, in the order the engine applies them."""

    time: datetime
    type: str
    id: str
    details: Mapping[str, str]
    note: str | None = None
    """`ignored after ticket.closed`, `counted at the opening (timed before it)`, `after the as-of instant`."""


@dataclass(frozen=True, slots=True)
class ClockSegment:
    """A running stretch of a clock (`end` None: still running, counted up to the as-of instant)."""

    start: datetime
    end: datetime | None
    cycle: int
    counted: Breakdown


@dataclass(frozen=True, slots=True)
class Pause:
    """A stretch between two segments of one cycle (paused) or cycles (resolved, then reopened)."""

    start: datetime
    end: datetime | None
    why: str
    skipped_business: timedelta
    """Working time in the stretch that the clock did not count."""


@dataclass(frozen=True, slots=True)
class PolicyChoice:
    """The policy a target was measured with, and the rule that chose it."""

    name: str
    position: int
    """Its index in the book's ordered `policies` (the first match wins)."""
    match: Mapping[str, tuple[str, ...]]
    """Its match keys (empty: matches every ticket)."""
    priority: str
    """The priority it was matched with (the one in force at the stop, or now)."""
    calendar: str
    limit: timedelta
    warn_at: float
    passed_over: tuple[tuple[str, str], ...]
    """(policy, the first of its match keys the ticket did not fit) of each policy before it."""


@dataclass(frozen=True, slots=True)
class DeadlineBasis:
    """How a deadline was computed: `limit - counted_before` of business time added from `start`."""

    start: datetime
    counted_before: timedelta
    remaining: timedelta
    walk: Breakdown


@dataclass(frozen=True, slots=True)
class TargetStory:
    """One target's clock and what the engine decides about it as of the story's instant."""

    target: str
    policy: PolicyChoice
    status: str
    elapsed: timedelta
    segments: tuple[ClockSegment, ...]
    pauses: tuple[Pause, ...]
    deadline: datetime | None
    deadline_basis: DeadlineBasis | None
    warning_at: datetime | None
    """When the `warn_at` share was (or will be, at the current pace) reached; None when not."""
    breached_from: datetime | None
    """The first instant with more than the limit elapsed (when the limit is or will be crossed)."""


@dataclass(frozen=True, slots=True)
class TicketStory:
    """The SLA story of one ticket as of `at`."""

    ticket_id: str
    at: datetime
    profile: Mapping[str, str | None]
    events: tuple[StoryEvent, ...]
    targets: tuple[TargetStory, ...]
    outcomes: tuple[SlaOutcome, ...]
    no_policy: tuple[str, ...] = ()
    """Targets without a policy (no SLA)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "as_of": self.at.isoformat(),
            "opened": bool(self.profile),
            "profile": dict(self.profile),
            "events": [event_json(e) for e in self.events],
            "targets": [target_json(t) for t in self.targets],
            "no_policy": list(self.no_policy),
            "outcomes": [outcome_json(o) for o in self.outcomes],
        }


def build_story(ticket_id: str, events: Iterable[sla.TicketEvent], book: PolicyBook, at: datetime) -> TicketStory:
    """The story of a ticket from its events (any order, duplicates dropped) as of `at`."""
    at_us = to_us(at)
    distinct: dict[str, sla.TicketEvent] = {}
    for event in events:
        if str(event.type) in RANKS:
            distinct.setdefault(str(event.id), event)
    ordered = sorted(distinct.values(), key=lambda e: (to_us(e.time), RANKS[str(e.type)], str(e.id)))
    state, outcomes = TicketSla(ticket_id=ticket_id), list[SlaOutcome]()
    for event in ordered:
        if to_us(event.time) >= at_us:
            break
        state, fired = sla.due_us(state, to_us(event.time) - 1, book)
        outcomes += fired
        state, decided = sla.apply(state, event, book)
        outcomes += decided
    state, fired = sla.due_us(state, at_us, book)
    outcomes += fired
    zone = next(iter(book.calendars.values())).zone
    story_events = tuple(_story_event(e, state, at_us, zone) for e in ordered)
    profile = state.profile
    fields = ("channel", "kind", "category", "priority", "department")
    profile_json: dict[str, str | None] = {} if profile is None else dict(zip(fields, profile, strict=True))
    targets: list[TargetStory] = []
    no_policy: list[str] = []
    timeline = build_timeline(state.marks, until=at_us)
    if timeline is not None:
        statuses = sla.evaluate_us(state, at_us, book)
        for name, clock in timeline.clocks.items():
            status = statuses.get(name)
            if status is None:
                no_policy.append(name)
                continue
            priority = clock.stops[-1].priority if clock.done else timeline.priority
            policy = book.policy(status.policy)
            choice = _choice(book, policy, timeline.profile_with(priority), name)
            targets.append(
                _target(
                    name,
                    choice,
                    status,
                    clock.segments,
                    book.calendar(policy.calendar),
                    at_us,
                    timeline.paused and not clock.done,
                )
            )
    return TicketStory(
        ticket_id,
        at.astimezone(zone),
        profile_json,
        story_events,
        tuple(targets),
        tuple(sorted(outcomes, key=lambda o: (o.at, o.target, o.type))),
        tuple(no_policy),
    )


def _story_event(event: sla.TicketEvent, state: TicketSla, at_us: int, zone: Any) -> StoryEvent:
    data = event.data
    details = {}
    for name in EVENT_DETAILS:
        value = getattr(data, name, None)
        if value is not None:
            details[name] = str(getattr(value, "value", value))
    time_us = to_us(event.time)
    opened = next((m.at for m in state.marks if m.rank == RANKS["ticket.opened"]), None)
    note = None
    if time_us >= at_us:
        note = "after the as-of instant"
    elif str(event.id) in state.ignored:
        note = "ignored: after ticket.closed"
    elif opened is not None and time_us < opened:
        note = "counted at the opening (timed before it)"
    elif opened is None:
        note = "waiting for ticket.opened"
    return StoryEvent(from_us(time_us, zone), str(event.type), str(event.id), details, note)


def _choice(
    book: PolicyBook, policy: Policy, profile: tuple[str, str, str, str, str | None], target: str
) -> PolicyChoice:
    position = book.policies.index(policy)
    passed = tuple((p.name, _misfit(p.match, profile)) for p in book.policies[:position])
    limit = policy.target(target)
    assert limit is not None  # evaluate leaves out targets without a limit
    return PolicyChoice(
        policy.name, position, _match_keys(policy.match), profile[3], policy.calendar, limit, policy.warn_at, passed
    )


def _match_keys(match: Match) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {}
    for name in ("channel", "kind", "category", "priority", "department"):
        values = getattr(match, name)
        listed = sorted(values) if values is not None else []
        if name == "category":
            listed += [f"{p}*" for p in match.category_prefixes]
        if listed:
            keys[name] = tuple(listed)
    return keys


def _misfit(match: Match, profile: tuple[str, str, str, str, str | None]) -> str:
    channel, kind, category, priority, department = profile
    for name, value in (("channel", channel), ("kind", kind), ("priority", priority), ("department", department)):
        allowed = getattr(match, name)
        if allowed is not None and value not in allowed:
            return name
    return "category"


def _target(
    name: str,
    choice: PolicyChoice,
    status: sla.TargetStatus,
    segments: list[Segment],
    cal: BusinessCalendar,
    at_us: int,
    paused: bool,
) -> TargetStory:
    limit = choice.limit // timedelta(microseconds=1)
    clock_segments = tuple(
        ClockSegment(
            cal.instant(s), None if e is None else cal.instant(e), c, breakdown(cal, s, at_us if e is None else e)
        )
        for s, e, c in segments
    )
    pauses = tuple(
        Pause(
            cal.instant(prev_end),
            cal.instant(nxt_start),
            "paused" if nxt_cycle == prev_cycle else "resolved",
            breakdown(cal, prev_end, nxt_start).business,
        )
        for (_, prev_end, prev_cycle), (nxt_start, _, nxt_cycle) in pairwise(segments)
        if prev_end is not None
    )
    if paused and segments and segments[-1][1] is not None:
        last_end = segments[-1][1]
        pauses += (Pause(cal.instant(last_end), None, "paused", breakdown(cal, last_end, at_us).business),)
    basis = _basis(cal, limit, segments, at_us, status)
    warn = measure(cal, limit, int(limit * choice.warn_at), segments)
    crossing = measure(cal, limit, None, segments).breach
    return TargetStory(
        name,
        choice,
        STATUS_PAUSED if status.status == UNDECIDED else status.status,
        status.elapsed,
        clock_segments,
        pauses,
        status.deadline,
        basis,
        None if warn.warning is None else cal.instant(warn.warning.fire),
        None if crossing is None else cal.instant(crossing.fire),
    )


def _basis(
    cal: BusinessCalendar, limit: int, segments: list[Segment], at_us: int, status: sla.TargetStatus
) -> DeadlineBasis | None:
    """The segment from which the engine added the rest of the limit, as `measure` and
    `projected_deadline` do: the one in which the limit is crossed, else the last one."""
    if status.deadline is None or not segments:
        return None
    total, chosen = 0, None
    for start, end, _cycle in segments:
        before = total
        if end is not None:
            total += cal.elapsed_us(start, end)
        chosen = (start, before)
        if end is None or total > limit:
            break
    assert chosen is not None
    start, before = chosen
    remaining = max(0, limit - before)
    deadline = cal.add_us(start, remaining)
    return DeadlineBasis(
        cal.instant(start),
        timedelta(microseconds=before),
        timedelta(microseconds=remaining),
        breakdown(cal, start, deadline),
    )

"""A ticket's whole SLA story, pure: its events, the policy chosen, the business time counted,
what was skipped, each deadline and warning and how it was computed, and the outcomes.

```python
story = build_story("T-1", events, book, at)       # events: the ticket's stored events
story.to_json()
```

Everything is derived with the engine's own code: the clocks with `sla_timeline.build_timeline`
and `measure`, the statuses and deadlines with `sla.evaluate_us`, the outcomes by folding the
events in event-time order with `sla.apply` and firing `sla.due_us` before each one and at `at`,
as the replay engine does (`stream_processors.sla_step.advance`). The breakdown into working
intervals only explains those figures; a test holds its totals equal to the engine's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from tawasul.domain import sla
from tawasul.domain.calendars import BusinessCalendar, from_us, to_us
from tawasul.domain.durations import format_duration
from tawasul.domain.policies import Match, Policy, PolicyBook
from tawasul.domain.sla_state import UNDECIDED, SlaOutcome, TicketSla
from tawasul.domain.sla_timeline import RANKS, Segment, build_timeline, measure

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
            "events": [_event_json(e) for e in self.events],
            "targets": [_target_json(t) for t in self.targets],
            "no_policy": list(self.no_policy),
            "outcomes": [_outcome_json(o) for o in self.outcomes],
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


def _story_event(event: sla.TicketEvent, state: TicketSla, at_us: int, zone: Any) -> StoryEvent:
    data = event.data
    details = {}
    for name in EVENT_DETAILS:
        value = getattr(data, name, None)
        if value is not None:
            details[name] = str(getattr(value, "value", value))
    time_us = to_us(event.time)
    opened = next((m[0] for m in state.marks if m[1] == RANKS["ticket.opened"]), None)
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


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def duration_text(value: timedelta) -> str:
    """`1h30m`, `0s`, `-2h` or `12.5s`: hours, minutes and seconds (fractions of a second kept)."""
    if value < timedelta(0):
        return "-" + duration_text(-value)
    whole = timedelta(seconds=value // timedelta(seconds=1))
    if whole == value and value:
        return format_duration(value)
    hours, rest = divmod(value, timedelta(hours=1))
    minutes, rest = divmod(rest, timedelta(minutes=1))
    seconds = f"{rest.total_seconds():g}s"
    return f"{hours}h" * bool(hours) + f"{minutes}m" * bool(minutes) + seconds


_dur = duration_text


def _breakdown_json(b: Breakdown) -> dict[str, Any]:
    return {
        "from": _iso(b.start),
        "to": _iso(b.end),
        "business": _dur(b.business),
        "business_seconds": b.business.total_seconds(),
        "intervals": [{"from": _iso(s.start), "to": _iso(s.end), "business": _dur(s.business)} for s in b.spans],
        "skipped_days": [{"date": _iso(d.day), "reason": d.reason, "name": d.name} for d in b.skipped],
        "ramadan_days": [_iso(d) for d in b.ramadan_days],
    }


def _event_json(e: StoryEvent) -> dict[str, Any]:
    return {"time": _iso(e.time), "type": e.type, "id": e.id, "details": dict(e.details), "note": e.note}


def _target_json(t: TargetStory) -> dict[str, Any]:
    p, b = t.policy, t.deadline_basis
    return {
        "target": t.target,
        "status": t.status,
        "elapsed": _dur(t.elapsed),
        "elapsed_seconds": t.elapsed.total_seconds(),
        "policy": {
            "name": p.name,
            "position": p.position,
            "match": {k: list(v) for k, v in p.match.items()},
            "priority": p.priority,
            "calendar": p.calendar,
            "limit": _dur(p.limit),
            "warn_at": p.warn_at,
            "passed_over": [{"policy": n, "misfit": k} for n, k in p.passed_over],
        },
        "segments": [
            {"from": _iso(s.start), "to": _iso(s.end), "cycle": s.cycle, "counted": _breakdown_json(s.counted)}
            for s in t.segments
        ],
        "pauses": [
            {"from": _iso(x.start), "to": _iso(x.end), "why": x.why, "skipped_business": _dur(x.skipped_business)}
            for x in t.pauses
        ],
        "deadline": _iso(t.deadline),
        "deadline_basis": None
        if b is None
        else {
            "from": _iso(b.start),
            "counted_before": _dur(b.counted_before),
            "remaining": _dur(b.remaining),
            "walk": _breakdown_json(b.walk),
        },
        "warning_at": _iso(t.warning_at),
        "breached_from": _iso(t.breached_from),
    }


def _outcome_json(o: SlaOutcome) -> dict[str, Any]:
    return {
        "id": o.id,
        "type": o.type,
        "target": o.target,
        "cycle": o.cycle,
        "policy": o.policy,
        "deadline": _iso(o.deadline),
        "at": _iso(o.at),
        "priority": o.priority,
    }


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """An outcome as the database stored it (`sla_outcomes`)."""

    id: str
    type: str
    target: str
    policy: str
    deadline: datetime
    at: datetime
    policies_sha256: str | None = None


def compare_outcomes(computed: Iterable[SlaOutcome], stored: Iterable[StoredOutcome]) -> list[dict[str, Any]]:
    """Each outcome id, computed now and as stored, side by side: `agree` when both exist with the
    same policy, deadline and instant; `computed only` / `stored only` otherwise."""
    mine = {o.id: o for o in computed}
    theirs = {o.id: o for o in stored}
    rows = []
    for outcome_id in sorted(mine.keys() | theirs.keys(), key=lambda i: ((mine.get(i) or theirs[i]).at, i)):
        a, b = mine.get(outcome_id), theirs.get(outcome_id)
        if a is None:
            verdict = "stored only"
        elif b is None:
            verdict = "computed only"
        elif (a.policy, a.deadline, a.at) == (b.policy, b.deadline, b.at):
            verdict = "agree"
        else:
            verdict = "differ"
        rows.append(
            {
                "id": outcome_id,
                "verdict": verdict,
                "computed": None if a is None else _outcome_json(a),
                "stored": None
                if b is None
                else {
                    "id": b.id,
                    "type": b.type,
                    "target": b.target,
                    "policy": b.policy,
                    "deadline": _iso(b.deadline),
                    "at": _iso(b.at),
                    "policies_sha256": b.policies_sha256,
                },
            }
        )
    return rows

"""The SLA engine of a ticket, pure and event-sourced (contract section 3).

`apply` folds one ticket event into the state and returns the outcomes it decides (a clock
stopping: `sla.met`, or a late `sla.breached`); `due` returns the warnings and breaches whose
instant has come; `next_deadline` says when `due` next has something to do; `evaluate` gives
the status of each target as of an instant, for the period report.

The state keeps the ticket's deduplicated events sorted by (time, type, id) and derives the
clocks from them, so out-of-order arrival of the same events gives the same result.
"""

from __future__ import annotations

import bisect
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tawasul.domain.calendars import from_us, to_us
from tawasul.domain.policies import Policy, PolicyBook
from tawasul.domain.sla_state import (
    BREACH_WITHDRAWN,
    BREACHED,
    MET,
    OUTCOME_ORDER,
    RUNNING,
    STATUS_BREACHED,
    STATUS_MET,
    UNDECIDED,
    WARNING,
    WARNING_WITHDRAWN,
    SlaError,
    SlaOutcome,
    TargetStatus,
    TicketSla,
    fired_bit,
)
from tawasul.domain.sla_timeline import (
    ASSIGNED,
    CLOSED,
    OPENED,
    PRIORITY,
    RANKS,
    Clock,
    Mark,
    Measure,
    Payload,
    Stop,
    Timeline,
    build_timeline,
    measure,
    projected_deadline,
)

FIRED_KINDS = frozenset({WARNING, BREACHED, MET})
"""Outcomes recorded in `TicketSla.fired` (withdrawals are not: they clear the bit they withdraw)."""

__all__ = [
    "SlaError",
    "SlaOutcome",
    "TargetStatus",
    "TicketSla",
    "TicketEvent",
    "apply",
    "due",
    "due_us",
    "evaluate",
    "evaluate_us",
    "next_deadline",
]


class TicketEvent(Protocol):
    """What the engine reads from an event (a `schemas.Event` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def subject(self) -> str: ...
    @property
    def data(self) -> Any: ...


def apply(state: TicketSla | None, event: TicketEvent, book: PolicyBook) -> tuple[TicketSla, list[SlaOutcome]]:
    """Fold a ticket event into the state; returns the new state and the outcomes it decides.

    Duplicates (by id) and non-ticket events change nothing; events after `ticket.closed` are
    dropped and counted (`ignored_after_close`).

    `state` is None, empty, or a state returned by `apply` or `due` (possibly stored and read
    back): its `fired` and `next_fire` are up to date with its marks. So an assignment, or a
    closing after the resolution, which leaves the clocks as they were, decides nothing new and
    keeps them as they are (`_advance` would find the same).
    """
    if state is None:
        state = TicketSla(ticket_id=str(event.subject))
    rank = RANKS.get(str(event.type))
    if rank is None:
        return state, []
    mark = mark_of(event, rank)
    if state.seen(mark.id, mark.at):
        return state, []
    marks = list(state.marks)
    if marks and marks[-1].rank == CLOSED and mark > marks[-1]:
        return replace(state, ignored=tuple(sorted((*state.ignored, mark.id)))), []
    bisect.insort(marks, mark)
    ignored = state.ignored
    if rank == CLOSED:
        cut = next(i for i, m in enumerate(marks) if m.rank == CLOSED) + 1
        ignored = tuple(sorted((*ignored, *(m.id for m in marks[cut:]))))
        marks = marks[:cut]
    new = TicketSla(state.ticket_id, tuple(marks), state.fired, ignored, state.next_fire, *_folding(state))
    if rank == ASSIGNED:  # `build_timeline` skips assignments: the clocks are as they were
        return new, []
    timeline = build_timeline(new.marks)
    if rank == CLOSED and timeline == build_timeline(state.marks):
        return new, []
    return _decide(new, timeline, book, None)


def due(state: TicketSla, now: datetime, book: PolicyBook) -> tuple[TicketSla, list[SlaOutcome]]:
    """Emit the warnings and breaches whose instant is at or before `now` and not yet emitted."""
    return due_us(state, to_us(now), book)


def due_us(state: TicketSla, now_us: int, book: PolicyBook) -> tuple[TicketSla, list[SlaOutcome]]:
    """`due` with `now` as microseconds since the epoch (the stream steps' clock)."""
    if state.next_fire is None or state.next_fire > now_us:
        return state, []
    return _advance(state, book, now_us)


def next_deadline(state: TicketSla) -> datetime | None:
    """The earliest instant (UTC) at which `due` would emit something; None when nothing can."""
    return None if state.next_fire is None else from_us(state.next_fire, UTC)


def evaluate(state: TicketSla, at: datetime, book: PolicyBook) -> dict[str, TargetStatus]:
    """The status of each target as of `at`, from the events with time before `at`.

    Targets without a policy are left out; an empty dict means the ticket has no SLA (yet).
    """
    return evaluate_us(state, to_us(at), book)


def evaluate_us(state: TicketSla, at_us: int, book: PolicyBook) -> dict[str, TargetStatus]:
    """`evaluate` as of microseconds since the epoch."""
    timeline = build_timeline(state.marks, until=at_us)
    if timeline is None:
        return {}
    result: dict[str, TargetStatus] = {}
    for target, clock in timeline.clocks.items():
        priority = clock.stops[-1].priority if clock.done else timeline.priority
        policy = book.match(*timeline.profile_with(priority))
        limit = None if policy is None else policy.target_us(target)
        if policy is None or limit is None:
            continue
        cal = book.calendar(policy.calendar)
        m = measure(cal, limit, None, clock.segments, horizon=at_us)
        spent = m.ends[-1] if m.ends else 0
        deadline: int | None = None
        if spent > limit and m.breach is not None:
            status, deadline = STATUS_BREACHED, m.breach.deadline
        elif clock.done:
            status = STATUS_MET
            deadline = projected_deadline(cal, limit, clock.segments, m.ends, len(m.ends), timeline.opened)
        elif timeline.paused:
            status = UNDECIDED
        else:
            status = RUNNING
            deadline = projected_deadline(cal, limit, clock.segments, m.ends, len(m.ends), timeline.opened)
        result[target] = TargetStatus(
            target,
            policy.name,
            status,
            timedelta(microseconds=spent),
            timedelta(microseconds=limit),
            None if deadline is None else cal.instant(deadline),
        )
    return result


def _text(value: Any) -> str:
    return sys.intern(str(getattr(value, "value", value)))


def mark_of(event: TicketEvent, rank: int) -> Mark:
    """The ticket event as the SLA state stores it: (time us, type rank, id, profile or priority)."""
    payload: Payload = None
    data = event.data
    if rank == OPENED:
        department = getattr(data, "department", None)
        payload = (
            _text(data.channel),
            _text(data.kind),
            _text(data.category),
            _text(data.priority),
            None if department is None else _text(department),
        )
    elif rank == PRIORITY:
        payload = _text(data.priority)
    return Mark(to_us(event.time), rank, str(event.id), payload)


def _advance(state: TicketSla, book: PolicyBook, now: int | None) -> tuple[TicketSla, list[SlaOutcome]]:
    """Emit stop outcomes (now is None: after an event) or timed ones up to `now`; reschedule."""
    return _decide(state, build_timeline(state.marks), book, now)


def _decide(
    state: TicketSla, timeline: Timeline | None, book: PolicyBook, now: int | None
) -> tuple[TicketSla, list[SlaOutcome]]:
    """`_advance` with the state's timeline already built."""
    if timeline is None:
        return TicketSla(state.ticket_id, state.marks, state.fired, state.ignored, None, *_folding(state)), []
    run = _Run(state, timeline, book)
    for target, clock in timeline.clocks.items():
        if now is None:
            run.stops(target, clock)
        if not clock.done:
            run.timed(target, now)
    run.outcomes.sort(key=lambda o: (o.at, o.target, OUTCOME_ORDER[o.type]))
    next_fire = min(run.fire_times, default=None)
    return TicketSla(state.ticket_id, state.marks, run.fired, state.ignored, next_fire, *_folding(state)), run.outcomes


def _folding(state: TicketSla) -> tuple[bytes, int, int, int | None]:
    """The folding fields of `state` (`sla_fold`), carried over unchanged."""
    return state.digest, state.folded_marks, state.folded_ignored, state.folded_before


class _Run:
    """One pass of the engine over a ticket's timeline: collects outcomes and future instants."""

    __slots__ = ("state", "timeline", "book", "fired", "outcomes", "fire_times", "_measures")

    def __init__(self, state: TicketSla, timeline: Timeline, book: PolicyBook) -> None:
        self.state, self.timeline, self.book = state, timeline, book
        self.fired = state.fired
        self.outcomes: list[SlaOutcome] = []
        self.fire_times: list[int] = []
        self._measures: dict[tuple[str, str], Measure] = {}

    def _policy(self, target: str, priority: str) -> tuple[Policy, int] | None:
        policy = self.book.match(*self.timeline.profile_with(priority))
        limit = None if policy is None else policy.target_us(target)
        return None if policy is None or limit is None else (policy, limit)

    def _measure(self, target: str, policy: Policy, limit: int) -> Measure:
        key = (target, policy.name)
        if key not in self._measures:
            clock = self.timeline.clocks[target]
            warn = (
                None
                if clock.done or self._has(target, WARNING) or self._has(target, BREACHED)
                else int(limit * policy.warn_at)
            )
            self._measures[key] = measure(self.book.calendar(policy.calendar), limit, warn, clock.segments)
        return self._measures[key]

    def _has(self, target: str, kind: str, cycle: int = 0) -> bool:
        return bool(self.fired & fired_bit(target, kind, cycle))

    def _emit(self, kind: str, target: str, policy: Policy, priority: str, deadline: int, at: int, cycle: int) -> None:
        if kind in FIRED_KINDS:
            self.fired |= fired_bit(target, kind, cycle)
        cal = self.book.calendar(policy.calendar)
        channel, ticket_kind, category, _, _ = self.timeline.profile
        self.outcomes.append(
            SlaOutcome(
                type=kind,
                ticket_id=self.state.ticket_id,
                target=target,
                policy=policy.name,
                deadline=cal.instant(deadline),
                at=cal.instant(at),
                channel=channel,
                kind=ticket_kind,
                category=category,
                priority=priority,
                cycle=cycle,
            )
        )

    def stops(self, target: str, clock: Clock) -> None:
        """Each stop decides its cycle: met within the limit, else the (single) breach."""
        for stop in clock.stops:
            found = self._policy(target, stop.priority)
            if found is None:
                continue
            policy, limit = found
            m = self._measure(target, policy, limit)
            spent = m.ends[stop.segments - 1] if stop.segments else 0
            if spent <= limit and not self._has(target, MET, stop.cycle):
                deadline = projected_deadline(
                    self.book.calendar(policy.calendar),
                    limit,
                    clock.segments,
                    m.ends,
                    stop.segments,
                    self.timeline.opened,
                )
                if self._has(target, BREACHED) and not self._true_before(target, stop, warning=False):
                    self._withdraw(BREACH_WITHDRAWN, BREACHED, target, policy, stop, deadline)
                warn = int(limit * policy.warn_at)
                if self._has(target, WARNING) and spent <= warn and not self._true_before(target, stop, warning=True):
                    self._withdraw(WARNING_WITHDRAWN, WARNING, target, policy, stop, deadline)
                elif (
                    policy.grace_us
                    and spent > warn
                    and not self._has(target, WARNING)
                    and not self._has(target, BREACHED)
                ):
                    self._missed_warning(target, policy, stop, limit, warn, clock)
                self._emit(MET, target, policy, stop.priority, deadline, stop.time, stop.cycle)
            elif spent > limit and m.breach is not None and not self._has(target, BREACHED):
                self._emit(
                    BREACHED, target, policy, stop.priority, m.breach.deadline, m.breach.fire - 1, m.breach.cycle
                )

    def _true_before(self, target: str, stop: Stop, *, warning: bool) -> bool:
        """True when event time confirms a breach (or warning) fired before this stop: at the
        stop, or just before a priority change ahead of it, more than the limit (or the warning
        share of it) of the policy then in force had elapsed. False: it was fired live ahead of
        an event that arrived late, and is withdrawn."""
        instants = [m.at for m in self.state.marks if m.rank == PRIORITY and m.at < stop.time]
        for at in (*instants, stop.time):
            status = evaluate_us(self.state, at, self.book).get(target)
            if status is None:
                continue
            limit = status.limit // timedelta(microseconds=1)
            if warning:
                policy = next((p for p in self.book.policies if p.name == status.policy), None)
                limit = limit if policy is None else int(limit * policy.warn_at)
            if status.elapsed // timedelta(microseconds=1) > limit:
                return True
        return False

    def _withdraw(self, kind: str, withdrawn: str, target: str, policy: Policy, stop: Stop, deadline: int) -> None:
        """Correct a warning or breach that a late event proves wrong: emit the withdrawal (the
        stop's cycle names the withdrawn outcome) and forget that it fired."""
        self._emit(kind, target, policy, stop.priority, deadline, stop.time, stop.cycle)
        self.fired &= ~fired_bit(target, withdrawn)

    def _missed_warning(self, target: str, policy: Policy, stop: Stop, limit: int, warn: int, clock: Clock) -> None:
        """A stop after the warning instant whose warning has not fired (held back by the
        policy's grace): the warning was true, so it is emitted now, at its instant."""
        crossing = measure(self.book.calendar(policy.calendar), limit, warn, clock.segments[: stop.segments]).warning
        if crossing is not None and crossing.fire < stop.time:
            self._emit(WARNING, target, policy, stop.priority, crossing.deadline, crossing.fire, crossing.cycle)

    def timed(self, target: str, now: int | None) -> None:
        """Emit the warning and breach of an open clock up to `now`; remember later instants."""
        priority = self.timeline.priority
        found = self._policy(target, priority)
        if found is None:
            return
        policy, limit = found
        m = self._measure(target, policy, limit)
        grace = policy.grace_us
        if m.warning is not None and not self._has(target, WARNING) and not self._has(target, BREACHED):
            if now is not None and m.warning.fire + grace <= now:
                self._emit(WARNING, target, policy, priority, m.warning.deadline, m.warning.fire, m.warning.cycle)
            else:
                self.fire_times.append(m.warning.fire + grace)
        if m.breach is not None and not self._has(target, BREACHED):
            if now is not None and m.breach.fire + grace <= now:
                self._emit(BREACHED, target, policy, priority, m.breach.deadline, m.breach.fire - 1, m.breach.cycle)
            else:
                self.fire_times.append(m.breach.fire + grace)

"""The period report (contract section 6), pure: events in, a typed `Report` out (`to_json()`).

```python
report = build_report(events, start, end, book, threshold_seconds=20)
```

The report is what one would have seen at `end`: events timed at or after `end` are ignored.
Events are deduplicated by id first (the first one seen is kept), and every figure depends on
the set of events only, never on their order. A call, ticket or visit belongs to the period of
its first event (`call.offered`, `ticket.opened`, `visit.checked_in`); a survey to the period
of its own time and to the section of its subject, wherever that subject's period lies. The
choices made where the contract leaves room are listed in `docs/report.md`.

Calls, visits and surveys are folded into the live KPIs' records (`kpi_records.apply`) and
counted by their rules (`kpi_tallies`): one rule per contact outcome for the report and the
live figures. Tickets are folded into the SLA engine's marks and evaluated by `sla.evaluate`.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from tawasul.domain import kpis, sla
from tawasul.domain.calendars import to_us
from tawasul.domain.kpi_records import SubjectRecord, record_of
from tawasul.domain.kpi_tallies import ZERO, KpiConfig, Tally, call_tally, survey_tally, visit_tally
from tawasul.domain.period import Period
from tawasul.domain.policies import PolicyBook
from tawasul.domain.report_result import (
    CallFigures,
    CategoryBreaches,
    Report,
    TargetFigures,
    TicketFigures,
    TicketGroup,
    WalkInFigures,
)
from tawasul.domain.sla_state import STATUS_BREACHED, STATUS_MET, TicketSla
from tawasul.domain.sla_timeline import CLOSED, OPENED, RANKS, REOPENED, RESOLVED, Mark

__all__ = [
    "DATA_EVENT_TYPES",
    "FIRST_EVENT_TYPES",
    "REPORT_EVENT_TYPES",
    "TARGETS",
    "BookFor",
    "Report",
    "ReportEvent",
    "build_report",
    "ticket_mark",
    "ticket_sla_of",
]

FIRST_EVENT_TYPES: dict[str, str] = {"call.offered": "call", "ticket.opened": "ticket", "visit.checked_in": "visit"}
"""The event that places a call, ticket or visit in a period, and the section it opens."""
REPORT_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "call.offered",
        "call.answered",
        "call.abandoned",
        "call.ended",
        "ticket.opened",
        "ticket.acknowledged",
        "ticket.assigned",
        "ticket.paused",
        "ticket.resumed",
        "ticket.priority_changed",
        "ticket.resolved",
        "ticket.reopened",
        "ticket.closed",
        "visit.checked_in",
        "visit.called",
        "visit.completed",
        "visit.no_show",
        "survey.submitted",
    }
)
"""Every event type the report reads; others (sla.*, kpi.snapshot) are ignored."""
DATA_EVENT_TYPES: frozenset[str] = frozenset(
    {"ticket.opened", "ticket.priority_changed", "call.ended", "survey.submitted"}
)
"""The types whose `data` the report reads; of the others it reads only id, type, subject and time."""
TARGETS: tuple[str, ...] = ("first_response", "resolution")


ReportEvent = sla.TicketEvent
"""What the report reads from an event (a `schemas.Event` fits); `data` is read only for
`DATA_EVENT_TYPES` (others may come without it). The same protocol as the SLA engine's."""


BookFor = Callable[[str], PolicyBook]
"""The policy book of a ticket, by ticket id (a period processed with several books)."""


def _text(value: Any) -> str:
    return sys.intern(str(getattr(value, "value", value)))


def ticket_mark(event: ReportEvent) -> Mark:
    """The ticket event as the SLA state stores it (`sla.mark_of`, the engine's own rule)."""
    return sla.mark_of(event, RANKS[event.type])


def ticket_sla_of(ticket_id: str, marks: Iterable[Mark]) -> TicketSla:
    """The SLA state `sla.apply` builds from these (distinct) events, in one step.

    The same marks and ignored ids as folding the events with `sla.apply` in any order (events
    after `ticket.closed` are dropped); the emission bookkeeping (`fired`, `next_fire`) is left
    empty, since `sla.evaluate` does not read it. Folding a half-year of tickets this way is
    about ten times faster than with `apply`, which re-derives the outcomes after every event.
    """
    ordered = sorted(marks)
    cut = next((i + 1 for i, m in enumerate(ordered) if m.rank == CLOSED), len(ordered))
    ignored = tuple(sorted(m.id for m in ordered[cut:]))
    return TicketSla(ticket_id=ticket_id, marks=tuple(ordered[:cut]), ignored=ignored)


@dataclass(slots=True)
class _Collector:
    """Folds deduplicated events (time < end): calls, visits and surveys into the live KPIs'
    records (`kpi_records.apply`), tickets into the SLA engine's marks."""

    end: datetime
    seen: set[str] = field(default_factory=set)
    contacts: dict[str, list[ReportEvent]] = field(default_factory=dict)
    """Call, visit and survey events per subject (folded by `kpi_records.record_of`)."""
    tickets: dict[str, list[Mark]] = field(default_factory=dict)

    def add(self, event: ReportEvent) -> None:
        kind = event.type
        if kind not in REPORT_EVENT_TYPES or event.id in self.seen:
            return
        self.seen.add(event.id)
        if event.time >= self.end:
            return
        if kind.startswith("ticket."):
            self.tickets.setdefault(event.subject, []).append(ticket_mark(event))
        else:
            self.contacts.setdefault(event.subject, []).append(event)

    def records(self) -> Iterator[tuple[str, SubjectRecord]]:
        for subject, events in self.contacts.items():
            record = record_of(subject, events)
            if record is not None:
                yield subject, record


def build_report(
    events: Iterable[ReportEvent],
    start: datetime,
    end: datetime,
    book: PolicyBook | BookFor,
    *,
    threshold_seconds: int = kpis.DEFAULT_THRESHOLD_SECONDS,
) -> Report:
    """The report of the period [start, end) as of `end` (`Report.to_json()`: the contract's JSON).

    `book` is the policy book of every ticket, or a function giving each ticket's book. Calls,
    visits and surveys are counted by the live KPIs' rules (`kpi_tallies`) over their records.

    Raises `PeriodError` when `end <= start` or either is naive.
    """
    period = Period(start, end)
    collector = _Collector(end)
    for event in events:
        collector.add(event)
    tickets = {subject: ticket_sla_of(subject, marks) for subject, marks in collector.tickets.items()}
    known_tickets = {subject for subject, state in tickets.items() if state.opened}
    span = (to_us(period.start), to_us(period.end))
    config = KpiConfig(default_threshold_seconds=threshold_seconds)
    calls = visits = call_surveys = visit_surveys = ZERO
    ticket_surveys: list[tuple[str, bool]] = []
    unmatched = 0
    for subject, record in collector.records():
        if record.offered is not None and span[0] <= record.offered[0] < span[1]:
            calls += call_tally(record, config)
        if record.checked_in is not None and span[0] <= record.checked_in[0] < span[1]:
            visits += visit_tally(record)
        section = "ticket" if subject in known_tickets else record.section
        for survey in record.surveys:
            if not span[0] <= survey.time_us < span[1]:
                continue
            tally = survey_tally(survey)
            if section == "call":
                call_surveys += tally
            elif section == "ticket":
                ticket_surveys.append((subject, bool(tally.satisfied)))
            elif section == "visit":
                visit_surveys += tally
            else:
                unmatched += 1
    return Report(
        period=period,
        calls=_calls(calls, threshold_seconds, call_surveys),
        tickets=_tickets(tickets, period, book if callable(book) else lambda _ticket: book, ticket_surveys),
        walk_in=_walk_in(visits, visit_surveys),
        unmatched_surveys=unmatched,
    )


def _us(total_us: int) -> timedelta:
    return timedelta(microseconds=total_us)


def _calls(t: Tally, threshold: int, surveys: Tally) -> CallFigures:
    return CallFigures(
        offered=t.offered,
        answered=t.answered,
        abandoned=t.abandoned,
        answered_within_threshold=t.within,
        service_level=kpis.service_level(t.within, t.answered, t.abandoned),
        threshold_seconds=threshold,
        average_speed_of_answer_seconds=kpis.average_speed_of_answer(_us(t.wait_us), t.answered),
        average_handle_seconds=kpis.average_handle_seconds(_us(t.handle_us), t.ended),
        abandon_ratio=kpis.abandon_ratio(t.abandoned, t.answered),
        surveys=surveys.responses,
        satisfied=surveys.satisfied,
        satisfaction=kpis.satisfaction(surveys.satisfied, surveys.responses),
    )


def _walk_in(t: Tally, surveys: Tally) -> WalkInFigures:
    return WalkInFigures(
        visits=t.visits,
        called=t.called,
        completed=t.completed,
        no_show=t.no_show,
        average_wait_seconds=kpis.average_wait_seconds(_us(t.visit_wait_us), t.called),
        surveys=surveys.responses,
        satisfied=surveys.satisfied,
        satisfaction=kpis.satisfaction(surveys.satisfied, surveys.responses),
    )


@dataclass(slots=True)
class _Group:
    """Ticket figures of the whole section, a channel, a kind or a category."""

    opened: int = 0
    resolved: int = 0
    met: Counter[str] = field(default_factory=Counter)
    breached: Counter[str] = field(default_factory=Counter)
    surveys: int = 0
    satisfied: int = 0

    def targets(self, target: str) -> TargetFigures:
        met, breached = self.met[target], self.breached[target]
        return TargetFigures(met, breached, kpis.compliance(met, breached))

    def figures(self) -> TicketGroup:
        return TicketGroup(
            opened=self.opened,
            resolved=self.resolved,
            first_response=self.targets("first_response"),
            resolution=self.targets("resolution"),
            surveys=self.surveys,
            satisfied=self.satisfied,
            satisfaction=kpis.satisfaction(self.satisfied, self.surveys),
        )


def _opened_at(state: TicketSla) -> int | None:
    return next((m.at for m in state.marks if m.rank == OPENED), None)


def _resolved(state: TicketSla) -> bool:
    """Resolved or closed as of the end: the last of resolved / reopened / closed is not a reopening."""
    last = next((m.rank for m in reversed(state.marks) if m.rank in (RESOLVED, REOPENED, CLOSED)), None)
    return last in (RESOLVED, CLOSED)


def _tickets(
    tickets: dict[str, TicketSla], period: Period, book_for: BookFor, surveys: list[tuple[str, bool]]
) -> TicketFigures:
    total = _Group()
    channels: defaultdict[str, _Group] = defaultdict(_Group)
    kinds: defaultdict[str, _Group] = defaultdict(_Group)
    categories: defaultdict[str, _Group] = defaultdict(_Group)
    start_us, end_us = to_us(period.start), to_us(period.end)
    for state in tickets.values():
        opened_at = _opened_at(state)
        profile = state.profile
        if opened_at is None or profile is None or not start_us <= opened_at < end_us:
            continue
        channel, kind, category = profile[0], profile[1], profile[2]
        groups = (total, channels[channel], kinds[kind], categories[category])
        resolved = _resolved(state)
        for status in sla.evaluate(state, period.end, book_for(state.ticket_id)).values():
            for group in groups:
                if status.status == STATUS_MET:
                    group.met[status.target] += 1
                elif status.status == STATUS_BREACHED:
                    group.breached[status.target] += 1
        for group in groups:
            group.opened += 1
            group.resolved += resolved
    for subject, satisfied in surveys:
        profile = tickets[subject].profile
        if profile is None:
            continue
        for group in (total, channels[profile[0]], kinds[profile[1]]):
            group.surveys += 1
            group.satisfied += satisfied
    return TicketFigures(
        **{f.name: getattr(total.figures(), f.name) for f in fields(TicketGroup)},
        by_channel={name: channels[name].figures() for name in sorted(channels)},
        by_kind={name: kinds[name].figures() for name in sorted(kinds)},
        breaches_by_category=_breaches_by_category(categories),
    )


def _breaches_by_category(categories: dict[str, _Group]) -> tuple[CategoryBreaches, ...]:
    """Categories with at least one breach, most breaches first (then by name)."""
    rows = []
    for name, group in categories.items():
        breached = sum(group.breached.values())
        if breached:
            rows.append(
                CategoryBreaches(
                    category=name,
                    opened=group.opened,
                    breached=breached,
                    first_response_breached=group.breached["first_response"],
                    resolution_breached=group.breached["resolution"],
                    resolution_compliance=group.targets("resolution").compliance,
                )
            )
    rows.sort(key=lambda r: (-r.breached, r.category))
    return tuple(rows)

"""The period report per agent or per team (`tawasul report --by agent|team`), pure.

```python
result = build_report_by(events, start, end, book, by="agent")
```

The same period rules as `report.build_report`: events timed at or after `end` are ignored,
events are deduplicated by id, a call or ticket belongs to the period of its first event, a
survey to the period of its own time. Per group:

* calls: answered (by the agent of the earliest `call.answered`; the team of a call is its
  queue, since calls carry no team), average handle time (answered to ended, plus wrap-up);
* tickets: those opened in the period, counted for the agent and team of their latest
  `ticket.assigned` timed before `end` (never assigned: the `null` group), and their first
  response and resolution met / breached by `sla.evaluate` as of `end` with the ticket's book;
* satisfaction: survey answers timed in the period about a call or ticket of the group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tawasul.domain import kpis, sla
from tawasul.domain.calendars import to_us
from tawasul.domain.kpi_records import record_of
from tawasul.domain.kpi_tallies import KpiConfig, call_tally
from tawasul.domain.period import Period
from tawasul.domain.policies import PolicyBook
from tawasul.domain.report import TARGETS, BookFor, ReportEvent, ticket_mark, ticket_sla_of
from tawasul.domain.report_result import GroupFigures, ReportBy, TargetFigures
from tawasul.domain.sla_state import STATUS_BREACHED, STATUS_MET
from tawasul.domain.sla_timeline import ASSIGNED, CLOSED, OPENED, RANKS, Mark
from tawasul.domain.supervisor import ServiceTally

__all__ = ["BY", "BY_DATA_EVENT_TYPES", "build_report_by"]

By = Literal["agent", "team"]
BY: tuple[By, ...] = ("agent", "team")
BY_DATA_EVENT_TYPES: frozenset[str] = frozenset(
    {"ticket.opened", "ticket.priority_changed", "ticket.assigned", "call.answered", "call.ended", "survey.submitted"}
)
"""The types whose `data` this report reads."""

Key = str | None


@dataclass(slots=True)
class _Ticket:
    marks: list[Mark] = field(default_factory=list)
    assignments: list[tuple[datetime, str, Key, Key]] = field(default_factory=list)
    """(time, id, agent, team) of each assignment."""

    def assignee(self, closed: Mark | None) -> tuple[datetime, str, Key, Key] | None:
        """The latest assignment, among those before `ticket.closed` (the SLA engine ignores
        every event after it)."""
        eligible = [a for a in self.assignments if closed is None or (to_us(a[0]), ASSIGNED, a[1]) < closed[:3]]
        return max(eligible, key=lambda a: a[:2], default=None)


@dataclass(slots=True)
class _Group:
    service: ServiceTally = field(default_factory=ServiceTally)
    """Calls answered, handle time and surveys, tallied by the supervisor view's one rule."""
    tickets_assigned: int = 0
    met: Counter[str] = field(default_factory=Counter)
    breached: Counter[str] = field(default_factory=Counter)

    def figures(self, key: Key) -> GroupFigures:
        service = self.service
        first_response, resolution = (
            TargetFigures(self.met[t], self.breached[t], kpis.compliance(self.met[t], self.breached[t]))
            for t in TARGETS
        )
        return GroupFigures(
            name=key,
            calls_answered=service.calls_answered,
            average_handle_seconds=service.average_handle_seconds,
            tickets_assigned=self.tickets_assigned,
            first_response=first_response,
            resolution=resolution,
            surveys=service.responses,
            satisfied=service.satisfied,
            satisfaction=service.satisfaction,
        )


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _opt(value: Any) -> Key:
    return None if value is None else _text(value)


def build_report_by(
    events: Iterable[ReportEvent], start: datetime, end: datetime, book: PolicyBook | BookFor, *, by: By
) -> ReportBy:
    """One group per agent or team (None: none), sorted by name with None last (`to_json()`:
    `{"period", "by", "groups": [...]}`). Raises `PeriodError` for a bad period, `ValueError`
    for a bad `by`."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, not {by!r}")
    period = Period(start, end)
    book_for: BookFor = book if callable(book) else lambda _ticket: book
    seen: set[str] = set()
    call_events: dict[str, list[ReportEvent]] = {}
    tickets: dict[str, _Ticket] = {}
    surveys: list[tuple[str, datetime, bool]] = []
    for event in events:
        if event.id in seen:
            continue
        seen.add(event.id)
        if event.time >= end:
            continue
        kind, subject = event.type, event.subject
        if kind in RANKS:
            ticket = tickets.setdefault(subject, _Ticket())
            ticket.marks.append(ticket_mark(event))
            if kind == "ticket.assigned":
                ticket.assignments.append(
                    (
                        event.time,
                        event.id,
                        _opt(getattr(event.data, "agent", None)),
                        _opt(getattr(event.data, "team", None)),
                    )
                )
        elif kind.startswith("call."):
            call_events.setdefault(subject, []).append(event)
        elif kind == "survey.submitted":
            surveys.append((subject, event.time, kpis.is_satisfied(event.data.score, event.data.scale)))
    groups: dict[Key, _Group] = {}
    owner: dict[str, Key] = {}
    start_us, end_us = to_us(period.start), to_us(period.end)
    rules = KpiConfig()
    for subject, events_of_call in call_events.items():  # answered calls, by the live KPIs' rule
        call = record_of(subject, events_of_call)
        if call is None:
            continue
        offered, answered = call.offered, call.answered
        if offered is None or not start_us <= offered[0] < end_us or answered is None or not call.is_answered:
            continue
        key: str | None = answered[3] if by == "agent" else answered[2]
        owner[subject] = key
        tally = call_tally(call, rules)
        groups.setdefault(key, _Group()).service.add_call(tally.handle_us / 1_000_000 if tally.ended else None)
    for subject, ticket in tickets.items():
        state = ticket_sla_of(subject, ticket.marks)
        opened = next((m.at for m in state.marks if m.rank == OPENED), None)
        if opened is None:
            continue
        assigned = ticket.assignee(next((m for m in state.marks if m.rank == CLOSED), None))
        key = None if assigned is None else (assigned[2] if by == "agent" else assigned[3])
        owner[subject] = key
        if not start_us <= opened < end_us:
            continue
        group = groups.setdefault(key, _Group())
        group.tickets_assigned += 1
        for status in sla.evaluate(state, period.end, book_for(subject)).values():
            if status.status == STATUS_MET:
                group.met[status.target] += 1
            elif status.status == STATUS_BREACHED:
                group.breached[status.target] += 1
    for subject, time, satisfied in surveys:
        if time not in period or subject not in owner:
            continue
        groups.setdefault(owner[subject], _Group()).service.add_survey(satisfied)
    ordered = sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return ReportBy(period, by, tuple(g.figures(key) for key, g in ordered))

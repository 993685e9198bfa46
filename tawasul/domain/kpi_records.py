"""Per-subject KPI facts: what the KPIs know of one call, visit, ticket or survey subject.

`apply(record, event)` folds an event into the record of its subject; it is idempotent and
does not depend on the order of arrival: of several events of one type, the earliest by
(time, id) wins. The live KPIs (`kpi_book`) and the period report (`report`) both build their
records with it. Events read without their `data` (the report's stored rows of the types whose
attributes it does not need) leave the queue, agent and centre empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from sys import intern
from typing import Any

from tawasul.domain.errors import DomainError
from tawasul.domain.sla import TicketEvent
from tawasul.domain.windows import to_us

__all__ = [
    "KPI_EVENT_TYPES",
    "Backlog",
    "KpiStateError",
    "Stamp",
    "SubjectRecord",
    "Survey",
    "apply",
    "record_of",
]

KPI_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "call.offered",
        "call.answered",
        "call.abandoned",
        "call.ended",
        "ticket.opened",
        "visit.checked_in",
        "visit.called",
        "visit.completed",
        "visit.no_show",
        "survey.submitted",
    }
)
"""The input events the KPIs read; the other ticket events reach them through the ticket state."""


class KpiStateError(DomainError, ValueError):
    """A stored KPI record or a ticket state message could not be read."""


Stamp = tuple[int, str]
"""(time us, event id): of several events of one type the smallest wins."""


@dataclass(frozen=True, slots=True)
class Survey:
    """One survey answer about the record's subject."""

    id: str
    time_us: int
    score: int
    scale: int
    channel: str


@dataclass(frozen=True, slots=True)
class Backlog:
    """The latest ticket state seen: open or not, and its backlog class."""

    version: int
    open: bool
    channel: str
    kind: str
    priority: str
    sla_state: str


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    """Everything the KPIs know about one ticket, call or visit (the table value)."""

    subject: str
    offered: tuple[int, str, str] | None = None
    """(us, id, queue)"""
    answered: tuple[int, str, str, str] | None = None
    """(us, id, queue, agent)"""
    abandoned: tuple[int, str, str] | None = None
    ended: tuple[int, str, float | None] | None = None
    """(us, id, wrap_up_seconds)"""
    opened: tuple[int, str, str, str, str, str | None] | None = None
    """(us, id, channel, kind, category, department)"""
    checked_in: tuple[int, str, str] | None = None
    """(us, id, centre)"""
    called: Stamp | None = None
    completed: Stamp | None = None
    no_show: Stamp | None = None
    surveys: tuple[Survey, ...] = ()
    backlog: Backlog | None = None
    seen_us: int = 0
    """The latest event time applied (for retention)."""

    @property
    def section(self) -> str | None:
        """`ticket`, `call` or `visit` once the subject's first event is known (ticket first)."""
        if self.opened is not None:
            return "ticket"
        if self.offered is not None:
            return "call"
        if self.checked_in is not None:
            return "visit"
        return None

    @property
    def is_answered(self) -> bool:
        """Answered, and not abandoned before (the report's rule for a call with both)."""
        return self.answered is not None and (self.abandoned is None or self.answered[:2] <= self.abandoned[:2])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; `SubjectRecord.from_dict(r.to_dict()) == r`."""
        out: dict[str, Any] = {"subject": self.subject, "seen_us": self.seen_us}
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        if self.surveys:
            out["surveys"] = [[s.id, s.time_us, s.score, s.scale, s.channel] for s in self.surveys]
        if self.backlog is not None:
            b = self.backlog
            out["backlog"] = [b.version, b.open, b.channel, b.kind, b.priority, b.sla_state]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SubjectRecord:
        try:
            values: dict[str, Any] = {name: _interned(raw[name]) for name in _TUPLE_FIELDS if raw.get(name) is not None}
            surveys = tuple(
                Survey(str(i), int(t), int(sc), int(sl), intern(str(ch))) for i, t, sc, sl, ch in raw.get("surveys", ())
            )
            backlog = raw.get("backlog")
            return cls(
                subject=str(raw["subject"]),
                seen_us=int(raw.get("seen_us", 0)),
                surveys=surveys,
                backlog=None
                if backlog is None
                else Backlog(int(backlog[0]), bool(backlog[1]), *(intern(str(v)) for v in backlog[2:6])),
                **values,
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise KpiStateError(f"unreadable KPI record: {type(exc).__name__}") from None


def _interned(stored: list[Any]) -> tuple[Any, ...]:
    """A stored (time, id, attributes...) list as a tuple, its attribute texts interned."""
    return tuple(v if i < 2 or not isinstance(v, str) else intern(v) for i, v in enumerate(stored))


_TUPLE_FIELDS: tuple[str, ...] = (
    "offered",
    "answered",
    "abandoned",
    "ended",
    "opened",
    "checked_in",
    "called",
    "completed",
    "no_show",
)


def _earliest(current: tuple[Any, ...] | None, candidate: tuple[Any, ...]) -> tuple[Any, ...]:
    return candidate if current is None or candidate[:2] < current[:2] else current


def _attribute(data: Any, name: str) -> str:
    """An attribute of the event's data as text (interned: one copy of each queue, agent,
    channel... however many records hold it); empty for an event read without its data."""
    return "" if data is None else intern(str(getattr(data, name)))


def _fact(kind: str, event: TicketEvent, at: int) -> tuple[str, Any]:
    """The record field an event of type `kind` (not a survey) fills, and its value."""
    data = event.data
    if kind == "call.offered":
        return "offered", (at, event.id, _attribute(data, "queue"))
    if kind == "call.answered":
        return "answered", (at, event.id, _attribute(data, "queue"), _attribute(data, "agent"))
    if kind == "call.abandoned":
        return "abandoned", (at, event.id, _attribute(data, "queue"))
    if kind == "call.ended":
        return "ended", (at, event.id, None if data.wrap_up_seconds is None else float(data.wrap_up_seconds))
    if kind == "ticket.opened":
        department = None if data.department is None else _attribute(data, "department")
        attributes = (_attribute(data, "channel"), _attribute(data, "kind"), _attribute(data, "category"))
        return "opened", (at, event.id, *attributes, department)
    if kind == "visit.checked_in":
        return "checked_in", (at, event.id, _attribute(data, "centre"))
    return kind.partition(".")[2], (at, event.id)


def _survey(event: TicketEvent, at: int) -> Survey:
    data = event.data
    return Survey(event.id, at, int(data.score), int(data.scale), _attribute(data, "channel"))


def _by_time(survey: Survey) -> tuple[int, str]:
    return survey.time_us, survey.id


def apply(record: SubjectRecord | None, event: TicketEvent) -> SubjectRecord | None:
    """The record after `event` (a `schemas.Event` fits); idempotent, order-independent; other
    event types change nothing."""
    kind = event.type
    if kind not in KPI_EVENT_TYPES:
        return record
    current = record or SubjectRecord(subject=event.subject)
    at = to_us(event.time)
    changes: dict[str, Any]
    if kind == "survey.submitted":
        if any(s.id == event.id for s in current.surveys):
            return current
        changes = {"surveys": tuple(sorted((*current.surveys, _survey(event, at)), key=_by_time))}
    else:
        name, value = _fact(kind, event, at)
        changes = {name: _earliest(getattr(current, name), value)}
    changes["seen_us"] = max(current.seen_us, at)
    return _replace(current, changes)


def record_of(subject: str, events: Iterable[TicketEvent]) -> SubjectRecord | None:
    """The record that folding these events of one subject with `apply` gives, built in one
    step (None when none is of a KPI type): the period report's fold of a half-year."""
    values: dict[str, Any] = {}
    surveys: dict[str, Survey] = {}
    seen: int | None = None
    for event in events:
        kind = event.type
        if kind not in KPI_EVENT_TYPES:
            continue
        at = to_us(event.time)
        if kind == "survey.submitted":
            if event.id in surveys:
                continue
            surveys[event.id] = _survey(event, at)
        else:
            name, value = _fact(kind, event, at)
            held = values.get(name)
            values[name] = _earliest(held, value)
        seen = at if seen is None else max(seen, at)
    if seen is None:
        return None
    ordered = tuple(sorted(surveys.values(), key=_by_time))
    return SubjectRecord(subject=subject, surveys=ordered, seen_us=max(seen, 0), **values)


def _replace(record: SubjectRecord, changes: dict[str, Any]) -> SubjectRecord:
    """`dataclasses.replace(record, **changes)`, or `record` itself when nothing changes."""
    if all(getattr(record, k) == v for k, v in changes.items()):
        return record
    return SubjectRecord(*[changes[name] if name in changes else getattr(record, name) for name in _RECORD_FIELDS])


_RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SubjectRecord))
"""The fields of `SubjectRecord` in declaration (positional) order."""

"""Load from the `events` table what the period report needs, streamed, in three queries.

1. every report event timed before `end` of the calls, tickets and visits whose first event
   (`call.offered`, `ticket.opened`, `visit.checked_in`) lies in [start, end);
2. the surveys timed in [start, end);
3. the first events, timed before `start`, of those surveys' subjects (to find their section).

Each query is one indexed statement (no query per subject) whose rows are fetched in batches.
Events whose `data` the report reads (`DATA_EVENT_TYPES`: openings, priority changes, call
ends, surveys) are read back from the stored payload with `schemas.parse_event`; of the others
the report reads only id, type, subject and time, which come from the table's columns as a
`StoredRow` (decoding every payload would make the query three times slower). Events may come
twice (a subject found by two queries); `build_report` deduplicates by id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Select, case, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from schemas import Event, InvalidEvent, parse_event
from sinks.db.engine import describe_error, describe_url
from sinks.db.models import StoredEvent
from tawasul.domain.report import DATA_EVENT_TYPES, FIRST_EVENT_TYPES, REPORT_EVENT_TYPES

__all__ = [
    "BATCH_ROWS",
    "ReportQueryError",
    "StoredRow",
    "load_report_events",
    "report_queries",
    "require_events_table",
]

BATCH_ROWS = 5_000
"""Rows fetched per round trip (a server-side cursor on PostgreSQL)."""
SURVEY = "survey.submitted"


class ReportQueryError(RuntimeError):
    """The report's events cannot be read from the database."""


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A stored event of a type whose `data` the report does not read (see `DATA_EVENT_TYPES`)."""

    id: str
    type: str
    subject: str
    time: datetime
    data: None = None


ReportRow = tuple[str, str, str, datetime, str | None]


def report_queries(
    start: datetime, end: datetime, data_types: frozenset[str] = DATA_EVENT_TYPES
) -> tuple[Select[ReportRow], ...]:
    """The three statements behind `load_report_events`: (id, type, subject, time, payload or NULL)."""
    events = StoredEvent.__table__
    payload = case((events.c.type.in_(sorted(data_types)), events.c.payload), else_=None)
    columns = (events.c.id, events.c.type, events.c.subject, events.c.time, payload)
    first_types = sorted(FIRST_EVENT_TYPES)
    period_subjects = select(events.c.subject).where(
        events.c.type.in_(first_types), events.c.time >= start, events.c.time < end
    )
    in_period = select(*columns).where(
        events.c.subject.in_(period_subjects),
        events.c.type.in_(sorted(REPORT_EVENT_TYPES - {SURVEY})),
        events.c.time < end,
    )
    survey_rows = (events.c.type == SURVEY, events.c.time >= start, events.c.time < end)
    surveys = select(*columns).where(*survey_rows)
    earlier_firsts = select(*columns).where(
        events.c.subject.in_(select(events.c.subject).where(*survey_rows)),
        events.c.type.in_(first_types),
        events.c.time < start,
    )
    return in_period, surveys, earlier_firsts


def require_events_table(engine: Engine) -> None:
    """Raise ReportQueryError with a hint when the database has no `events` table."""
    try:
        present = inspect(engine).has_table(StoredEvent.__tablename__)
    except SQLAlchemyError as exc:
        raise ReportQueryError(f"cannot open the database {describe_url(engine.url)}: {describe_error(exc)}") from exc
    if not present:
        raise ReportQueryError(
            "the database has no events table yet: run `tawasul db upgrade` "
            "(or start `tawasul sink`, which creates it) and store some events first"
        )


def load_report_events(
    engine: Engine, start: datetime, end: datetime, data_types: frozenset[str] = DATA_EVENT_TYPES
) -> Iterator[Event | StoredRow]:
    """The events the report of [start, end) needs; see the module docstring. `data_types`: the
    types decoded in full (`report_by.BY_DATA_EVENT_TYPES` for the report per agent or team).

    Raises ReportQueryError when the table is missing or a stored payload is not a valid event.
    """
    require_events_table(engine)
    with engine.connect() as connection:
        streaming = connection.execution_options(yield_per=BATCH_ROWS)
        for statement in report_queries(start, end, data_types):
            try:
                for event_id, kind, subject, time, payload in streaming.execute(statement):
                    if payload is None:
                        yield StoredRow(event_id, kind, subject, time)
                    else:
                        yield _decode(event_id, payload)
            except SQLAlchemyError as exc:
                raise ReportQueryError(f"reading events failed: {exc}") from exc


def _decode(event_id: str, payload: str) -> Event:
    try:
        return parse_event(json.loads(payload))
    except (ValueError, InvalidEvent) as exc:
        raise ReportQueryError(f"stored event {event_id!r} is not a valid event: {exc}") from exc

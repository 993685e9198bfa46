"""Calls and visits as rows merged from their events, independent of arrival order.

Each event fills its own time column and a few descriptive columns. Merging keeps the
earliest time of each kind and the first non-null descriptive value, so a repeated or late
event changes nothing it should not, in the writer's batch as in the database's upsert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sinks.db.records import EventRecord, Row, clean_text, seconds_between


@dataclass(frozen=True)
class ContactSpec:
    """How one table (calls or visits) is built from its event types."""

    table: str
    key: str
    fields: Mapping[str, tuple[str, tuple[str, ...]]]
    """event type -> (time column, data fields copied to same-named columns)."""
    times: tuple[str, ...] = field(default=())
    descriptive: tuple[str, ...] = field(default=())

    def columns(self) -> tuple[str, ...]:
        return (self.key, *self.times, *self.descriptive)


CALLS = ContactSpec(
    table="calls",
    key="call_id",
    fields={
        "call.offered": ("offered_at", ("queue", "language")),
        "call.answered": ("answered_at", ("queue", "agent")),
        "call.abandoned": ("abandoned_at", ("queue",)),
        "call.ended": ("ended_at", ("queue", "agent", "wrap_up_seconds")),
    },
    times=("offered_at", "answered_at", "abandoned_at", "ended_at"),
    descriptive=("queue", "agent", "language", "wrap_up_seconds"),
)

VISITS = ContactSpec(
    table="visits",
    key="visit_id",
    fields={
        "visit.checked_in": ("checked_in_at", ("centre", "service")),
        "visit.called": ("called_at", ("centre", "counter")),
        "visit.completed": ("completed_at", ("centre",)),
        "visit.no_show": ("no_show_at", ("centre",)),
    },
    times=("checked_in_at", "called_at", "completed_at", "no_show_at"),
    descriptive=("centre", "service", "counter"),
)

SPEC_BY_TYPE: dict[str, ContactSpec] = {t: spec for spec in (CALLS, VISITS) for t in spec.fields}


def merge_event(rows: dict[str, Row], spec: ContactSpec, event: EventRecord) -> None:
    """Fold `event` into `rows` (subject -> partial row of `spec.table`)."""
    subject = clean_text(event.subject)
    row = rows.get(subject)
    if row is None:
        row = dict.fromkeys(spec.columns())
        row[spec.key] = subject
        rows[subject] = row
    time_column, copied = spec.fields[event.type]
    current = row[time_column]
    if current is None or event.time < current:
        row[time_column] = event.time
    data = event.data
    for name in copied:
        if row[name] is None:
            value = data.get(name)
            row[name] = clean_text(value) if isinstance(value, str) else value


def call_wait(offered: object, answered: object, abandoned: object) -> float | None:
    """Offered to answered, or offered to abandoned when the call was not answered."""
    return seconds_between(offered, answered if answered is not None else abandoned)  # type: ignore[arg-type]  # row values: datetimes or None


def call_handle(answered: object, ended: object, wrap_up: float | None) -> float | None:
    """Answered to ended, plus the wrap-up time."""
    talk = seconds_between(answered, ended)  # type: ignore[arg-type]  # row values: datetimes or None
    return None if talk is None else talk + (wrap_up or 0.0)


def finish_call(row: Row) -> Row:
    """The row with its derived durations."""
    wrap = row["wrap_up_seconds"]
    row["wrap_up_seconds"] = None if wrap is None else float(wrap)
    row["wait_seconds"] = call_wait(row["offered_at"], row["answered_at"], row["abandoned_at"])
    row["handle_seconds"] = call_handle(row["answered_at"], row["ended_at"], row["wrap_up_seconds"])
    return row


def finish_visit(row: Row) -> Row:
    """The row with its wait (checked in to called)."""
    row["wait_seconds"] = seconds_between(row["checked_in_at"], row["called_at"])
    return row

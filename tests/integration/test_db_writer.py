"""The batch DB writer on SQLite and PostgreSQL: idempotent, exactly once, ordered by version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from producers.simulator import Params, iter_events, parse_when
from schemas import Event, new_event, parse_event
from sinks.db.decoding import decode_input
from sinks.db.engine import make_engine
from sinks.db.migrate import upgrade
from sinks.db.models import Base, Call, KpiSnapshot, SlaOutcome, StoredEvent, Survey, Ticket, TicketTarget, Visit
from sinks.db.records import kpi_key
from sinks.db.writer import DbWriter

DUBAI = "+04:00"


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def simulated(days: int = 1, scale: float = 0.3) -> list[Event]:
    start = parse_when("2025-03-03")
    params = Params(start, start + timedelta(days=days), seed=11, scale=scale, tail=True)
    return [parse_event(raw) for raw in iter_events(params)]


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for name, table in Base.metadata.tables.items():
            statement = select(table).order_by(*table.primary_key.columns)
            out[name] = [tuple(row) for row in connection.execute(statement)]
    return out


def count(engine: Engine, model: type[Base]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def outcome(ticket: str, kind: str, at: str, target: str = "resolution", cycle: int = 0) -> Event:
    return new_event(
        kind,
        ticket,
        at,
        {
            "ticket_id": ticket,
            "target": target,
            "policy": "crm-standard",
            "deadline": "2025-03-05T11:30:00+04:00",
            "channel": "crm",
            "kind": "request",
            "category": "licensing.renewal",
            "priority": "normal",
        },
        source="/stream-processors/sla",
        id=f"{ticket}:{target}:{kind}:{cycle}",
    )


def kpi(value: float, as_of: str, event_id: str) -> Event:
    return new_event(
        "kpi.snapshot",
        "calls.service_level|15m|queue=general",
        as_of,
        {
            "figure": "calls.service_level",
            "window": "15m",
            "scope": {"queue": "general"},
            "value": value,
            "count": 40,
            "as_of": as_of,
        },
        source="/stream-processors/kpi",
        id=event_id,
    )


def ticket_state(version: int, status: str, targets: dict[str, dict[str, Any]], ticket: str = "T-1") -> dict[str, Any]:
    return {
        "ticket_id": ticket,
        "channel": "crm",
        "kind": "request",
        "category": "licensing.renewal",
        "priority": "normal",
        "department": None,
        "status": status,
        "policy": "crm-standard",
        "opened_at": "2025-03-03T09:00:00+04:00",
        "resolved_at": "2025-03-04T10:00:00+04:00" if status != "open" else None,
        "closed_at": None,
        "updated_at": f"2025-03-0{3 + version % 5}T10:00:00+04:00",
        "version": version,
        "targets": targets,
    }


def target(state: str, deadline: str | None = "2025-03-05T11:30:00+04:00", breached: bool = False) -> dict[str, Any]:
    return {"deadline": deadline, "state": state, "warned": breached, "breached": breached}


def test_events_stored_once_with_payload_round_trip(engine: Engine) -> None:
    events = simulated()
    writer = DbWriter(engine)
    for event in events + events[:50]:  # duplicates inside one batch
        writer.add(event)
    first = writer.flush()
    assert first.records == len(events) + 50
    assert first.rows["events"] == len(events)
    for event in events[::2]:  # and again in a later batch
        writer.add(event)
    assert writer.flush().rows.get("events", 0) == 0
    assert count(engine, StoredEvent) == len(events)

    by_id = {event.id: event for event in events}
    with engine.connect() as connection:
        stored = connection.execute(
            select(StoredEvent.id, StoredEvent.time, StoredEvent.payload, StoredEvent.stored_at)
        ).all()
    assert len(stored) == len(by_id)
    for event_id, time, payload, stored_at in stored:
        original = by_id[event_id]
        assert payload == original.to_json().decode("utf-8")
        assert parse_event(json.loads(payload)) == original
        assert time == original.time and time.tzinfo == UTC
        assert stored_at.tzinfo == UTC


def test_raw_messages_take_the_fast_path_and_round_trip(engine: Engine) -> None:
    events = simulated(scale=0.1)
    raws = [json.dumps(event.to_dict(), indent=1).encode("utf-8") for event in events]  # not the compact form
    writer = DbWriter(engine)
    for raw in raws:
        writer.add(decode_input(raw))
    writer.flush()
    with engine.connect() as connection:
        payloads = dict(connection.execute(select(StoredEvent.id, StoredEvent.payload)).tuples().all())
    assert set(payloads) == {event.id for event in events}
    for event in events:
        assert parse_event(json.loads(payloads[event.id])) == event


def test_same_batch_twice_changes_nothing(engine: Engine) -> None:
    records: list[Any] = [
        *simulated(scale=0.1),
        outcome("T-1", "sla.warning", "2025-03-05T09:00:00+04:00"),
        outcome("T-1", "sla.breached", "2025-03-05T11:30:00+04:00"),
        kpi(0.8125, "2025-03-03T10:15:00+04:00", "k-1"),
        ticket_state(2, "open", {"first_response": target("met"), "resolution": target("running")}),
    ]
    writer = DbWriter(engine)
    for record in records:
        writer.add(record)
    stored = writer.flush()
    assert stored.rows["sla_outcomes"] == 2 and stored.rows["kpi_snapshots"] == 1 and stored.rows["tickets"] == 1
    assert stored.rows["ticket_targets"] == 2
    before = snapshot(engine)
    for record in records:
        writer.add(record)
    again = writer.flush()
    assert again.rows == {}
    assert snapshot(engine) == before
    assert count(engine, SlaOutcome) == 2
    assert count(engine, Survey) == sum(1 for r in records if getattr(r, "type", "") == "survey.submitted")


def test_late_older_ticket_state_never_overwrites_a_newer_one(engine: Engine) -> None:
    newer = ticket_state(5, "resolved", {"resolution": target("breached", breached=True)})
    older = ticket_state(3, "open", {"first_response": target("running"), "resolution": target("running")})
    writer = DbWriter(engine)
    writer.add(newer)
    writer.flush()
    writer.add(older)  # arrives late, in a batch of its own
    writer.flush()
    writer.add(older)  # and inside a batch, after the newer one
    writer.add(newer)
    writer.add(older)
    writer.flush()
    with engine.connect() as connection:
        ticket = connection.execute(select(Ticket)).one()
        targets = connection.execute(
            select(TicketTarget.target, TicketTarget.state, TicketTarget.breached, TicketTarget.version)
        ).all()
    assert (ticket.version, ticket.status) == (5, "resolved")
    assert ticket.resolved_at == datetime(2025, 3, 4, 6, 0, tzinfo=UTC)
    assert targets == [("resolution", "breached", True, 5)]

    latest = ticket_state(6, "closed", {"first_response": target("met"), "resolution": target("met")})
    writer.add(latest)
    writer.flush()
    with engine.connect() as connection:
        states = dict(connection.execute(select(TicketTarget.target, TicketTarget.state)).tuples().all())
        assert connection.execute(select(Ticket.status)).scalar_one() == "closed"
    assert states == {"first_response": "met", "resolution": "met"}


def test_a_breach_fired_between_two_events_is_stored_and_never_taken_back(engine: Engine) -> None:
    """The clock fires warnings and breaches without a new event: the state keeps its version."""

    def state(warned: bool, breached: bool) -> dict[str, Any]:
        return ticket_state(
            4,
            "open",
            {
                "first_response": target("met"),
                "resolution": {
                    "deadline": "2025-03-05T11:30:00+04:00",
                    "state": "breached" if breached else "running",
                    "warned": warned,
                    "breached": breached,
                },
            },
        )

    def stored() -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    select(
                        TicketTarget.target,
                        TicketTarget.state,
                        TicketTarget.warned,
                        TicketTarget.breached,
                        TicketTarget.version,
                    ).order_by(TicketTarget.target)
                )
            ]

    writer = DbWriter(engine)
    writer.add(state(False, False))
    writer.flush()
    writer.add(state(True, False))
    writer.flush()
    assert stored()[1] == ("resolution", "running", True, False, 4)
    writer.add(state(True, True))
    assert writer.flush().rows["ticket_targets"] == 1
    breached = [("first_response", "met", False, False, 4), ("resolution", "breached", True, True, 4)]
    assert stored() == breached
    for late in (state(False, False), state(True, False)):  # redelivered late, a batch each
        writer.add(late)
        assert writer.flush().rows.get("ticket_targets", 0) == 0
    writer.add(state(True, True))  # inside one batch, in any order
    writer.add(state(False, False))
    writer.add(state(True, False))
    writer.flush()
    assert stored() == breached


def test_calls_and_visits_merge_in_any_order(engine: Engine) -> None:
    def ev(kind: str, subject: str, at: str, data: dict[str, Any], n: int) -> Event:
        return new_event(
            kind, subject, f"2025-03-03T{at}{DUBAI}", data, source="/channels/pbx/main", id=f"{subject}-{n}"
        )

    call = [
        ev("call.offered", "C-1", "09:00:00", {"queue": "general", "language": "ar"}, 1),
        ev("call.answered", "C-1", "09:00:12.250000", {"queue": "general", "agent": "a-1"}, 2),
        ev("call.ended", "C-1", "09:05:00", {"agent": "a-1", "wrap_up_seconds": 30}, 3),
    ]
    visit = [
        ev("visit.checked_in", "V-1", "10:00:00", {"centre": "main", "service": "marriage"}, 1),
        ev("visit.called", "V-1", "10:07:30", {"centre": "main", "counter": "7"}, 2),
        ev("visit.completed", "V-1", "10:20:00", {"centre": "main"}, 3),
    ]
    writer = DbWriter(engine)
    for event in reversed(call + visit):  # each event in its own batch, newest first
        writer.add(event)
        writer.flush()
    for event in call + visit:  # everything again, in one batch
        writer.add(event)
    assert writer.flush().rows == {}
    with engine.connect() as connection:
        stored_call = connection.execute(select(Call)).one()
        stored_visit = connection.execute(select(Visit)).one()
    assert stored_call.offered_at == datetime(2025, 3, 3, 5, 0, tzinfo=UTC)
    assert (stored_call.queue, stored_call.agent, stored_call.language) == ("general", "a-1", "ar")
    assert stored_call.wait_seconds == pytest.approx(12.25, abs=1e-9)
    assert stored_call.handle_seconds == pytest.approx(287.75 + 30, abs=1e-9)
    assert stored_visit.wait_seconds == pytest.approx(450.0, abs=1e-9)
    assert (stored_visit.centre, stored_visit.service, stored_visit.counter) == ("main", "marriage", "7")
    assert stored_visit.completed_at == datetime(2025, 3, 3, 6, 20, tzinfo=UTC)


def test_kpi_snapshot_keeps_the_newest(engine: Engine) -> None:
    writer = DbWriter(engine)
    writer.add(kpi(0.9, "2025-03-03T10:30:00+04:00", "k-2"))
    writer.flush()
    writer.add(kpi(0.5, "2025-03-03T10:15:00+04:00", "k-1"))  # older, late
    writer.flush()
    with engine.connect() as connection:
        row = connection.execute(select(KpiSnapshot)).one()
    key = kpi_key("calls.service_level", "15m", {"queue": "general"})
    assert row.key == key == "calls.service_level|15m|queue=general"
    assert (row.value, row.count, row.event_id) == (0.9, 40, "k-2")
    assert row.as_of == datetime(2025, 3, 3, 6, 30, tzinfo=UTC)
    assert json.loads(row.scope) == {"queue": "general"}


def test_a_failed_flush_keeps_the_batch(engine: Engine) -> None:
    events = simulated(scale=0.05)
    writer = DbWriter(engine)
    for event in events:
        writer.add(event)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE events RENAME TO events_away"))
    with pytest.raises(SQLAlchemyError):
        writer.flush()
    assert len(writer) == len(events)
    assert count(engine, Call) == 0  # nothing of the batch was stored
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE events_away RENAME TO events"))
    assert writer.flush().rows["events"] == len(events)
    assert len(writer) == 0

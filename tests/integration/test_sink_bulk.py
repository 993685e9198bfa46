"""The sink's bulk statements (one per table per batch) on SQLite and PostgreSQL: a batch holding
duplicates, conflicting duplicates, several versions of one ticket, withdrawals and KPI ties
stores exactly what the same records store one at a time, whatever the batch boundaries."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from schemas import INPUT_EVENT_TYPES, Event, new_event
from sinks.db.decoding import decode_ticket_state
from sinks.db.engine import make_engine
from sinks.db.migrate import upgrade
from sinks.db.models import Base, KpiSnapshot, SlaOutcome, StoredEvent, Ticket, TicketTarget
from sinks.db.writer import DbWriter
from sinks.input_checks import decoder_for
from tawasul.infra.topics import EVENTS, SLA_OUTCOMES
from tests.integration.test_db_writer import kpi, outcome, simulated, snapshot, target, ticket_state

STORED_AT = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _changed(event: Event, **data: Any) -> Event:
    """The same id with other content (a conflicting duplicate)."""
    body = {**json.loads(event.to_json())["data"], **data}
    return new_event(event.type, event.subject, event.time, body, source=event.source, id=event.id)


def withdrawal(ticket: str, at: str) -> Event:
    """The withdrawal of `ticket`'s resolution breach (cycle 0)."""
    breach = outcome(ticket, "sla.breached", at)
    data = {**json.loads(breach.to_json())["data"], "withdrawn_id": breach.id}
    kind = "sla.breach_withdrawn"
    return new_event(kind, ticket, at, data, source=breach.source, id=f"{ticket}:resolution:{kind}:0")


def _states() -> list[dict[str, Any]]:
    """Four versions of T-1 and T-2 (shuffled), and T-3 at one version with growing progress."""
    out = [
        ticket_state(v, "open" if v < 4 else "resolved", {"resolution": target("running" if v < 4 else "met")}, t)
        for t in ("T-1", "T-2")
        for v in (1, 2, 3, 4)
    ]
    random.Random(5).shuffle(out)
    late = {"deadline": "2025-03-05T11:30:00+04:00", "state": "running", "warned": True, "breached": False}
    out += [
        ticket_state(2, "open", {"resolution": target("breached", breached=True)}, "T-3"),
        ticket_state(2, "open", {"resolution": late}, "T-3"),
        ticket_state(2, "open", {"resolution": target("running")}, "T-3"),
    ]
    return out


def mixed_batch() -> tuple[list[Any], set[str]]:
    """Records as the sink reads them, and the ids of the conflicting duplicates among them."""
    events = simulated(days=1, scale=0.1)
    firsts = {kind: next(e for e in events if e.type == kind) for kind in ("call.offered", "survey.submitted")}
    conflicting = [
        _changed(firsts["call.offered"], queue="elsewhere"),
        _changed(firsts["survey.submitted"], score=1 if firsts["survey.submitted"].data.score != 1 else 2),  # type: ignore[attr-defined]
    ]
    records: list[Any] = [*events[:100], conflicting[0], *events[100:], *events[:40], conflicting[1]]
    records += _states()
    records += [
        outcome("T-1", "sla.warning", "2025-03-05T09:00:00+04:00"),
        outcome("T-1", "sla.breached", "2025-03-05T11:30:00+04:00"),
        withdrawal("T-1", "2025-03-05T11:40:00+04:00"),  # after the breach
        withdrawal("T-2", "2025-03-05T11:40:00+04:00"),  # before it
        outcome("T-2", "sla.breached", "2025-03-05T11:30:00+04:00"),
        outcome("T-3", "sla.met", "2025-03-05T10:00:00+04:00"),
        outcome("T-3", "sla.met", "2025-03-05T10:00:00+04:00"),
    ]
    records += [
        kpi(0.5, "2025-03-03T10:15:00+04:00", "k-1"),
        kpi(0.9, "2025-03-03T10:30:00+04:00", "k-2"),
        kpi(0.7, "2025-03-03T10:00:00+04:00", "k-0"),  # older, later in the batch
        kpi(0.95, "2025-03-03T10:30:00+04:00", "k-3"),  # same as_of, the later message wins
    ]
    return records, {c.id for c in conflicting}


def as_read(record: Any) -> Any:
    """The record as the sink decodes it from its Kafka message."""
    if isinstance(record, dict):
        return decode_ticket_state(json.dumps(record).encode())
    topic = EVENTS if record.type in INPUT_EVENT_TYPES else SLA_OUTCOMES
    return decoder_for(topic)(record.to_json())


def store(engine: Engine, records: list[Any], batch: int) -> set[str]:
    """Store `records` in batches of `batch`; the ids reported as conflicting duplicates."""
    writer = DbWriter(engine, clock=lambda: STORED_AT)
    conflicts: set[str] = set()
    for start in range(0, len(records), batch):
        for record in records[start : start + batch]:
            writer.add(record)
        conflicts |= {c.record.id for c in writer.flush().conflicts}
    return conflicts


def clear(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))


@pytest.mark.parametrize("read", [False, True], ids=["events", "as-read"])
def test_one_batch_stores_what_one_record_at_a_time_stores(engine: Engine, read: bool) -> None:
    """`DbWriter` takes validated `Event`s (and ticket-state dicts) or what the sink's decoders
    read from Kafka (`EventRecord`, `OutcomeRecord`, `TicketState`): the same rows either way."""
    records, conflicting = mixed_batch()
    if read:
        records = [as_read(record) for record in records]
    assert store(engine, records, 1) == conflicting
    one_by_one = snapshot(engine)

    for batch in (len(records), 7, 64):
        clear(engine)
        assert store(engine, records, batch) == conflicting, batch
        assert snapshot(engine) == one_by_one, batch
    assert store(engine, records, len(records)) == conflicting  # delivered again: reported again
    assert snapshot(engine) == one_by_one

    with engine.connect() as connection:
        payloads = dict(connection.execute(select(StoredEvent.id, StoredEvent.payload)).tuples().all())
        tickets = dict(connection.execute(select(Ticket.ticket_id, Ticket.version)).tuples().all())
        targets = connection.execute(
            select(TicketTarget.ticket_id, TicketTarget.state, TicketTarget.warned, TicketTarget.breached).order_by(
                TicketTarget.ticket_id
            )
        ).all()
        outcomes = sorted(connection.execute(select(SlaOutcome.id)).scalars())
        kpi_row = connection.execute(select(KpiSnapshot.event_id, KpiSnapshot.value)).one()
    originals: dict[str, Any] = {}
    for record in records:  # the first of each id is kept
        if getattr(record, "id", None) in conflicting:
            originals.setdefault(record.id, record)
    expected = {i: json.loads(getattr(e, "payload", None) or e.to_json()) for i, e in originals.items()}
    assert {i: json.loads(payloads[i]) for i in conflicting} == expected
    assert tickets == {"T-1": 4, "T-2": 4, "T-3": 2}
    assert [tuple(t) for t in targets] == [
        ("T-1", "met", False, False),
        ("T-2", "met", False, False),
        ("T-3", "breached", True, True),
    ]
    assert outcomes == [
        "T-1:resolution:sla.breach_withdrawn:0",
        "T-1:resolution:sla.warning:0",
        "T-2:resolution:sla.breach_withdrawn:0",
        "T-3:resolution:sla.met:0",
    ]
    assert tuple(kpi_row) == ("k-3", 0.95)


def test_an_integer_out_of_range_is_refused_never_wrapped(engine: Engine) -> None:
    """PostgreSQL's binary COPY would wrap 2^31 + 5 around to a negative `integer`: the bulk
    path refuses it as `DataError` (the sink then stores the batch around it), like the server
    refuses it in text. SQLite's integers have 64 bits: it is stored as it is."""
    from sqlalchemy.exc import DataError

    from sinks.db.records import TicketState
    from sinks.db.upserts import Upserts

    state = TicketState.from_dict(ticket_state(3, "open", {"resolution": target("running")}))
    row = {**state.ticket_row(), "version": 2**31 + 5}
    if engine.dialect.name == "postgresql":
        with pytest.raises(DataError), engine.begin() as connection:
            Upserts().upsert_tickets(connection, [row], [])
        with engine.connect() as connection:
            assert connection.execute(select(Ticket.version)).all() == []
    else:
        with engine.begin() as connection:
            Upserts().upsert_tickets(connection, [row], [])
        with engine.connect() as connection:
            assert connection.execute(select(Ticket.version)).scalar_one() == 2**31 + 5
    other = TicketState.from_dict(ticket_state(3, "open", {"resolution": target("running")}, "T-2"))
    with engine.begin() as connection:  # the next batch goes through
        assert Upserts().upsert_tickets(connection, [other.ticket_row()], other.target_rows()) == (1, 1)

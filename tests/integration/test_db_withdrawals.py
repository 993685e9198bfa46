"""The sink keeps the final truth of a corrected outcome, on SQLite and PostgreSQL, whatever the
batch boundaries and however often the messages come again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from schemas import new_event
from sinks.db.decoding import decode_pipeline_event
from sinks.db.engine import make_engine
from sinks.db.migrate import upgrade
from sinks.db.models import SlaOutcome, TicketTarget
from sinks.db.records import withdrawal_of, withdrawn_by
from sinks.db.writer import DbWriter
from stream_processors.outcome_event import encode_outcome
from stream_processors.sla_step import advance, decode, live_event
from stream_processors.ticket_state import ticket_state
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import load_policies_text
from tests.support.sla_invariants import sla_contradictions

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BOOK = load_policies_text("""
calendars:
  always: {always_open: true}
policies:
  - {name: quick, match: {}, calendar: always, first_response: 2m, resolution: 1h, warn_at: 0.5}
""")


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def late_acknowledgement() -> list[object]:
    """What the live worker publishes for one ticket whose acknowledgement (at 90 s) arrives
    after the breach fired: the outcome records and ticket states, in publishing order."""
    data = {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"}
    opened = new_event("ticket.opened", "T-9", T0, data, "/tests", id="T-9-open")
    ack = new_event("ticket.acknowledged", "T-9", T0 + timedelta(seconds=90), {}, "/tests", id="T-9-ack")
    out: list[object] = []
    stored = decode(None, "T-9")
    for wall, event in ((T0, opened), (T0 + timedelta(seconds=125), None), (T0 + timedelta(seconds=270), ack)):
        step = (
            advance(stored, to_us(wall), BOOK, replay=False)
            if event is None
            else live_event(stored, event, to_us(wall), BOOK)
        )
        stored = step.stored
        out += [decode_pipeline_event(encode_outcome(o)) for o in step.outcomes]
        view = ticket_state(stored, to_us(wall), BOOK)
        assert view is not None
        out.append(view)
    return out


def stored(engine: Engine) -> tuple[list[str], list[tuple[str, str, bool]]]:
    with engine.connect() as connection:
        outcomes = sorted(connection.execute(select(SlaOutcome.id)).scalars())
        targets = [
            (t, s, bool(b))
            for t, s, b in connection.execute(
                select(TicketTarget.target, TicketTarget.state, TicketTarget.breached).order_by(TicketTarget.target)
            )
        ]
    return outcomes, targets


@pytest.mark.parametrize("batch", [1, 2, 100])
def test_a_withdrawn_breach_is_not_kept(engine: Engine, batch: int) -> None:
    records = late_acknowledgement()
    kinds = [getattr(r, "type", None) for r in records]
    assert [k for k in kinds if k] == ["sla.warning", "sla.breached", "sla.breach_withdrawn", "sla.met"]
    writer = DbWriter(engine)
    for attempt in range(2):  # everything delivered twice (a sink restart)
        for start in range(0, len(records), batch):
            for record in records[start : start + batch]:
                writer.add(record)  # type: ignore[arg-type]
            writer.flush()
        outcomes, targets = stored(engine)
        assert outcomes == [
            "T-9:first_response:sla.breach_withdrawn:0",
            "T-9:first_response:sla.met:0",
            "T-9:first_response:sla.warning:0",
        ], attempt
        assert targets == [("first_response", "met", False), ("resolution", "running", False)], attempt
        assert sla_contradictions(engine) == []


def test_withdrawal_ids_name_the_withdrawn_outcome() -> None:
    assert withdrawn_by("T:1:first_response:sla.breach_withdrawn:0") == "T:1:first_response:sla.breached:0"
    assert withdrawn_by("T-1:resolution:sla.warning_withdrawn:2") == "T-1:resolution:sla.warning:2"
    assert withdrawn_by("T-1:resolution:sla.breached:0") is None
    assert withdrawal_of("T-1:resolution:sla.breached:1") == "T-1:resolution:sla.breach_withdrawn:1"
    assert withdrawal_of("T-1:resolution:sla.met:0") is None

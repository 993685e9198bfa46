"""Policy books in the database (SQLite and PostgreSQL): stored once per hash with first and
last use; outcomes and ticket states keep the hash of the book that produced them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from schemas import Event
from sinks.db.decoding import decode_pipeline_event, decode_ticket_state
from sinks.db.engine import make_engine
from sinks.db.migrate import upgrade
from sinks.db.models import SlaOutcome, Ticket, TicketTarget
from sinks.db.policy_books import decode_policy_book, read_books
from sinks.db.records import BadRecord
from sinks.db.writer import DbWriter
from stream_processors.outcome_event import encode_outcome
from tawasul.domain.policies import default_policy_path
from tawasul.domain.sla_state import SlaOutcome as Outcome
from tawasul.infra.policy_books import read_policy_file

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_books_outcomes_and_states_keep_the_hash(engine: Engine) -> None:
    policy = read_policy_file(default_policy_path())
    assert len(policy.sha256) == 64 and policy.book.sha256 == policy.sha256
    clock = iter([T0 + timedelta(minutes=m) for m in range(10)])
    writer = DbWriter(engine, clock=lambda: next(clock))
    writer.add(decode_policy_book(policy.message("replay", T0 - timedelta(hours=1))[1]))
    writer.add(decode_policy_book(policy.message("worker", T0 - timedelta(hours=3))[1]))
    writer.flush()
    [stored] = read_books(engine).values()
    assert (stored.sha256, stored.name, stored.yaml) == (policy.sha256, "default.yaml", policy.text)
    assert (stored.first_used_at, stored.last_used_at) == (T0 - timedelta(hours=3), T0 - timedelta(hours=1))
    assert stored.book is not None and [p.name for p in stored.book.policies][0] == "mosque-urgent"

    outcome = Outcome(
        type="sla.met",
        ticket_id="T-1",
        target="resolution",
        policy="crm-standard",
        deadline=T0,
        at=T0 - timedelta(hours=1),
        channel="crm",
        kind="request",
        category="x",
        priority="normal",
    )
    writer.add(decode_pipeline_event(encode_outcome(outcome, policy.sha256)))
    writer.add(
        decode_ticket_state(
            b'{"ticket_id":"T-1","channel":"crm","kind":"request","category":"x","priority":"normal",'
            b'"status":"resolved","version":3,"policies_sha256":"' + policy.sha256.encode() + b'",'
            b'"targets":{"resolution":{"deadline":null,"state":"met"}}}'
        )
    )
    writer.flush()
    with engine.connect() as connection:
        assert connection.execute(select(SlaOutcome.policies_sha256)).scalar_one() == policy.sha256
        assert connection.execute(select(Ticket.policies_sha256)).scalar_one() == policy.sha256
        assert connection.execute(select(TicketTarget.policies_sha256)).scalar_one() == policy.sha256
    [touched] = read_books(engine).values()
    assert touched.first_used_at == T0 - timedelta(hours=3)
    assert touched.last_used_at == T0 + timedelta(minutes=1)  # the stored_at of the second batch

    # the same messages again change nothing
    writer.add(decode_policy_book(policy.message("worker", T0 - timedelta(hours=3))[1]))
    assert writer.flush().rows.get("policy_books", 0) == 0


def test_outcome_without_hash_still_reads_and_bad_books_are_refused() -> None:
    outcome = Outcome(
        type="sla.met",
        ticket_id="T-1",
        target="resolution",
        policy="p",
        deadline=T0,
        at=T0,
        channel="crm",
        kind="request",
        category="x",
        priority="normal",
    )
    assert decode_pipeline_event(encode_outcome(outcome)).policies_sha256 is None
    with_hash = decode_pipeline_event(encode_outcome(outcome, "ab" * 32))
    assert with_hash.policies_sha256 == "ab" * 32
    assert not isinstance(with_hash, Event)
    with pytest.raises(BadRecord, match="sha256 is not the hash"):
        decode_policy_book(b'{"name":"x","sha256":"00","yaml":"a: 1","used_at":"2026-12-01T00:00:00Z"}')
    with pytest.raises(BadRecord, match="not UTF-8 JSON"):
        decode_policy_book(b"\xff")

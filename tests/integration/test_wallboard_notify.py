"""The sink's writer tells the wall display of each committed batch on PostgreSQL: a
`tawasul_changes` notice when a batch stored rows, none when a batch changed nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from sinks.db.engine import make_engine
from sinks.db.migrate import upgrade
from sinks.db.records import OutcomeRecord
from sinks.db.writer import DbWriter
from sinks.wallboard.live import NOTIFY_CHANNEL

pytestmark = pytest.mark.postgres


def outcome(ticket_id: str) -> OutcomeRecord:
    at = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
    return OutcomeRecord(
        id=f"{ticket_id}:resolution:sla.breached:0",
        type="sla.breached",
        time=at,
        ticket_id=ticket_id,
        target="resolution",
        policy="p",
        deadline=at,
        channel="crm",
        kind="complaint",
        category="c",
        priority="high",
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # LISTEN/NOTIFY is PostgreSQL's
def test_a_committed_batch_notifies_and_a_batch_without_changes_does_not(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        writer = DbWriter(engine)
        writer.add(outcome("T-N-1"))
        writer.flush()
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == [NOTIFY_CHANNEL]
        writer.add(outcome("T-N-1"))  # already stored: nothing changes
        writer.flush()
        assert list(listener.notifies(timeout=1)) == []
    engine.dispose()

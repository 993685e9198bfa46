"""Closed tickets leave the live SLA table after `TAWASUL_CLOSED_RETENTION` (issue 15, bounded state).

With a retention of 3 seconds, a ticket closed now gets a tombstone in `tawasul.tickets.state`
and in the table's changelog once the partition's clock passes its closing plus 3 s; an open
ticket keeps its state. The sink and the KPI processor skip tombstones (`sinks.consumer`,
`kpi_agent._forward_states`), so no figure changes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer
from sqlalchemy import func, select

from schemas import new_event
from sinks.db.engine import make_engine
from sinks.db.models import Ticket, TicketTarget
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings
from tawasul.infra.topics import TICKET_STATE
from tests.integration.test_sink_kafka import SinkThread, settings, wait_until  # noqa: F401  (fixture)
from tests.integration.test_sla_live_clock import opened, wait_for
from tests.integration.test_sla_poison import poison_policies
from tests.integration.test_sla_restart import WorkerProcess, free_port
from tests.integration.test_sla_stream import prefixed_settings, publish
from tests.support.kafka import read_all, unique
from tests.unit.test_metrics_feed import ticket_state

pytestmark = pytest.mark.kafka


def test_closed_ticket_leaves_the_table_after_the_retention(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAWASUL_CLOSED_RETENTION", "3s")
    settings = prefixed_settings(kafka_bootstrap, poison_policies(tmp_path), "sla-retention")
    app_id = f"{settings.topic_prefix}worker"
    states_topic, changelog = settings.topic("tawasul.tickets.state"), f"{app_id}-sla-changelog"
    port = free_port()
    worker = WorkerProcess(settings, app_id, tmp_path / "state", metrics_port=port)
    closed, still_open = b"T-closed", b"T-still-open"
    try:
        worker.wait_ready()
        now = datetime.now(UTC)
        publish(
            kafka_bootstrap,
            settings.topic("tawasul.events"),
            [
                opened("T-closed", now),
                opened("T-still-open", now),
                new_event("ticket.closed", "T-closed", now, {}, "/channels/test/retention", id="T-closed-close"),
            ],
        )

        def tombstones(topic: str) -> set[bytes | None]:
            return {key for _t, _p, key, value in read_all(kafka_bootstrap, [topic]) if value is None}

        wait_for(lambda: closed in tombstones(states_topic), 60, "the closed ticket's tombstone")
        wait_for(lambda: closed in tombstones(changelog), 30, "the changelog tombstone")
        figures = worker.scrape_and_stop(port)
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    assert figures.get("tawasul_closed_tickets_expired_total", 0) == 1
    states = [(key, value) for _t, _p, key, value in read_all(kafka_bootstrap, [states_topic])]
    assert [value for key, value in states if key == closed][-1] is None  # the tombstone comes last
    assert all(value is not None for key, value in states if key == still_open)
    assert still_open not in tombstones(changelog)


def test_the_sink_keeps_a_ticket_whose_state_is_tombstoned(settings: Settings) -> None:  # noqa: F811
    """On SQLite and PostgreSQL: the tombstone after a closed ticket's last state changes no row."""
    state = ticket_state("T-gone", 4, status="closed")
    state.update(closed_at="2025-03-04T12:00:00+04:00", policies_sha256=None)
    state_topic = settings.topic(TICKET_STATE.name)
    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    try:
        producer.send(state_topic, key=b"T-gone", value=json.dumps(state).encode())
        producer.send(state_topic, key=b"T-gone", value=None)
        producer.flush(30)
    finally:
        producer.close()
    sink = SinkThread(settings, unique("sink-retention"), Metrics(), batch_max=100, batch_wait_s=0.2)
    wait_until(lambda: sink.handled(state_topic) >= 2, what="the state and its tombstone")
    assert sink.close().skipped == 0
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            kept = connection.execute(select(Ticket.status, Ticket.version)).all()
            targets = connection.execute(select(func.count()).select_from(TicketTarget)).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(row) for row in kept] == [("closed", 4)]
    assert targets == 2

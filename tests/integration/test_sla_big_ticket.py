"""A ticket with tens of thousands of events keeps its partition moving (issue 15, bounded state).

One ticket's history (20,000 events at CI size, 50,000 with TAWASUL_TEST_FULL=1, one second
apart, mostly reassignments) is published into a live worker, then a normal ticket: the normal
ticket's breach still fires, the worker lives, and the big ticket's SLA state in the table's
changelog stays under 64 kB (without folding it would pass Kafka's 1 MB message limit at about
15,000 events). While the worker catches up with a backlog, the table value also queues the
events of one allowed lateness (`pending`, full events): bounded by the ticket's event rate,
not by its history; the test asserts that whole value under 256 kB.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import Event, new_event
from stream_processors.sla_step import Stored, decode, encode
from tests.integration.test_sla_live_clock import opened, outcome_types, wait_for
from tests.integration.test_sla_poison import poison_policies
from tests.integration.test_sla_restart import WorkerProcess
from tests.integration.test_sla_stream import prefixed_settings, publish
from tests.support.kafka import read_all

pytestmark = pytest.mark.kafka

EVENTS = 50_000 if os.environ.get("TAWASUL_TEST_FULL") == "1" else 20_000
BIG = "T-big"


def history(count: int, start: datetime) -> list[Event]:
    events = [opened(BIG, start)]
    for number in range(1, count + 1):
        kind, data = "ticket.assigned", {"team": "complaints", "agent": f"s-{number % 7}"}
        if number % 2000 == 0:
            kind, data = "ticket.paused", {"reason": "waiting_on_customer"}
        elif number % 2000 == 1000:
            kind, data = "ticket.resumed", {}
        events.append(
            new_event(kind, BIG, start + timedelta(seconds=number), data, "/channels/test/big", id=f"{BIG}-{number}")
        )
    return events


def test_a_ticket_with_many_events_keeps_its_partition_moving(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = prefixed_settings(kafka_bootstrap, poison_policies(tmp_path), "sla-big")
    events_topic = settings.topic("tawasul.events")
    app_id = f"{settings.topic_prefix}worker"
    worker = WorkerProcess(settings, app_id, tmp_path / "state")
    try:
        worker.wait_ready()
        start = datetime.now(UTC) - timedelta(seconds=EVENTS + 120)
        publish(kafka_bootstrap, events_topic, history(EVENTS, start))
        normal = "T-after-big"
        publish(kafka_bootstrap, events_topic, [opened(normal, datetime.now(UTC))])
        breach = f"{normal}:first_response:sla.breached:0"
        wait_for(lambda: breach in outcome_types(settings), 300, "the normal ticket's breach after the big one")
        assert f"{BIG}:first_response:sla.breached:0" in outcome_types(settings)
        assert worker.proc.poll() is None, "the worker died"
        assert worker.terminate() == 0
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    changelog = read_all(kafka_bootstrap, [f"{app_id}-sla-changelog"], timeout_s=60)
    values = [value for _topic, _partition, key, value in changelog if key == BIG.encode()]
    assert values, "no changelog record of the big ticket"
    largest = max(len(value) for value in values)
    states = [encode(Stored(decode(value, BIG).sla)) for value in values]  # without the catch-up queue
    largest_state = max(len(state) for state in states)
    print(
        f"{EVENTS} events of one ticket: {len(values)} changelog records, largest {largest} bytes, "
        f"largest SLA state {largest_state} bytes"
    )
    assert largest_state < 64 * 1024
    assert largest < 256 * 1024  # while catching up: at most one lateness of events queued
    letters = read_all(kafka_bootstrap, [settings.topic("tawasul.deadletter")])
    assert not letters

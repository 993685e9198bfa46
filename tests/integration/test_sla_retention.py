"""Closed tickets leave the live SLA table after `TAWASUL_CLOSED_RETENTION` (issue 15, bounded state).

With a retention of 3 seconds, a ticket closed now gets a tombstone in `tawasul.tickets.state`
and in the table's changelog once the partition's clock passes its closing plus 3 s; an open
ticket keeps its state. The sink and the KPI processor skip tombstones (`sinks.consumer`,
`kpi_agent._forward_states`), so no figure changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import new_event
from tests.integration.test_sla_live_clock import opened, wait_for
from tests.integration.test_sla_poison import poison_policies
from tests.integration.test_sla_restart import WorkerProcess, free_port
from tests.integration.test_sla_stream import prefixed_settings, publish
from tests.support.kafka import read_all

pytestmark = pytest.mark.kafka


def test_closed_ticket_leaves_the_table_after_the_retention(kafka_bootstrap: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
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
        publish(kafka_bootstrap, settings.topic("tawasul.events"), [
            opened("T-closed", now), opened("T-still-open", now),
            new_event("ticket.closed", "T-closed", now, {}, "/channels/test/retention", id="T-closed-close")])

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
    assert [value for key, value in states if key == closed][-1] is None      # the tombstone comes last
    assert all(value is not None for key, value in states if key == still_open)
    assert still_open not in tombstones(changelog)

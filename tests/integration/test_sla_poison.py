"""A live worker survives poison events and stray replay markers (issue 15, the processor side).

Events dated 0001-01-01 and 9999-12-31, valid by the contract, are injected straight into
Kafka (no gateway): the SLA engine cannot compute their deadlines. Each goes to the dead-letter
topic with the exception text, and the worker goes on firing the next ticket's deadlines. A
replay's end-of-input marker published onto the live ticks topic is ignored and counted.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from producers.deadletter import decode_dead_letter
from stream_processors.clock import watermark_message
from stream_processors.sla_agent import IGNORED_MARKER_MESSAGE
from tests.integration.test_sla_live_clock import opened, outcome_types, policies_file, wait_for
from tests.integration.test_sla_restart import WorkerProcess, free_port, scrape
from tests.integration.test_sla_stream import prefixed_settings, publish
from tests.support.kafka import read_all

pytestmark = pytest.mark.kafka

POISON_TIMES = ("0001-01-01T00:00:00+04:00", "9999-12-31T23:59:59+00:00")


def raw_opened(ticket: str, at: str) -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": f"{ticket}-open", "source": "/channels/test/poison", "type": "ticket.opened",
        "time": at, "subject": ticket, "datacontenttype": "application/json",
        "data": {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"},
    }).encode()


def test_poison_events_are_dead_lettered_and_the_worker_goes_on(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = prefixed_settings(kafka_bootstrap, policies_file(tmp_path, "3s"), "sla-poison")
    events_topic, ticks_topic = settings.topic("tawasul.events"), settings.topic("tawasul.sla.ticks")
    port = free_port()
    worker = WorkerProcess(settings, f"{settings.topic_prefix}worker", tmp_path / "state", metrics_port=port)
    try:
        worker.wait_ready()
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            for i, when in enumerate(POISON_TIMES):
                producer.send(events_topic, key=f"T-poison-{i}".encode(), value=raw_opened(f"T-poison-{i}", when))
            far = datetime.now(UTC) + timedelta(days=365)        # would fire every deadline if obeyed
            for partition in range(6):
                producer.send(ticks_topic, value=watermark_message(far, 0, run=settings.topic_prefix),
                              partition=partition)
            producer.flush()
        finally:
            producer.close()
        patient = "T-poison-after-long"       # 1 h resolution target: a stray marker would breach it
        publish(kafka_bootstrap, events_topic, [opened("T-poison-after", datetime.now(UTC)),
                                                opened(patient, datetime.now(UTC))])
        breach = "T-poison-after:first_response:sla.breached:0"
        wait_for(lambda: breach in outcome_types(settings), 60, "the breach after the poison events")
        assert worker.proc.poll() is None, "the worker died"
        figures = scrape(port)
        assert worker.terminate() == 0
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    letters = [decode_dead_letter(value) for *_, value in read_all(kafka_bootstrap, [settings.topic("tawasul.deadletter")])]
    by_ticket = {json.loads(letter.original)["subject"]: letter for letter in letters}
    # year 1 in Dubai is year 0 in UTC for the engine's instants; 9999-12-31 may be stored harmlessly
    # (its deadline never comes) or refused, depending on the calendar: either way the worker goes on
    assert "T-poison-0" in by_ticket and set(by_ticket) <= {"T-poison-0", "T-poison-1"}
    assert all(re.match(r"sla: (OverflowError|ValueError): ", letter.reason) for letter in letters)
    assert all(letter.origin.startswith(f"{events_topic}:") for letter in letters)
    assert figures.get("tawasul_dead_letters_total", 0) == len(letters)
    assert figures.get("tawasul_sla_ticks_ignored_total", 0) == 6
    assert sum(1 for e in worker.logs if e.get("message") == IGNORED_MARKER_MESSAGE) == 6
    assert not any(i.startswith(f"{patient}:resolution") for i in outcome_types(settings))

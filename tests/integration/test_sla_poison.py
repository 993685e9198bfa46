"""A live worker survives poison events and stray replay markers (issue 15, the processor side).

Events the SLA step cannot compute are injected straight into Kafka (no gateway): tickets on a
calendar closed for more than 400 days (`CalendarError` in the step, a misconfigured policy
book's typical poison). Each goes to the dead-letter topic with the exception text, and the
worker goes on firing the next ticket's deadlines. Events dated 0001-01-01 and 9999-12-31 are
refused by the contract's decoder (times lie in 2000..2100), so the worker skips them without
a step (the sink dead-letters them: tests/abuse/test_injection_sink.py). A replay's
end-of-input marker published onto the live ticks topic is ignored and counted.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from stream_processors.clock import watermark_message
from stream_processors.sla_agent import IGNORED_MARKER_MESSAGE
from tawasul.infra.deadletter import decode_dead_letter
from tests.integration.test_sla_live_clock import opened, outcome_types, wait_for
from tests.integration.test_sla_restart import WorkerProcess, free_port
from tests.integration.test_sla_stream import prefixed_settings, publish
from tests.support.kafka import read_all

pytestmark = pytest.mark.kafka

OUT_OF_RANGE_TIMES = ("0001-01-01T00:00:00+04:00", "9999-12-31T23:59:59+00:00")
POISONED = ("T-poison-0", "T-poison-1")


def raw_opened(ticket: str, at: str, category: str = "licensing.renewal") -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"{ticket}-open",
            "source": "/channels/test/poison",
            "type": "ticket.opened",
            "time": at,
            "subject": ticket,
            "datacontenttype": "application/json",
            "data": {"channel": "crm", "kind": "request", "category": category, "priority": "normal"},
        }
    ).encode()


def poison_policies(folder: Path) -> Path:
    """`live` (first response 3 s) for every ticket but `poison.*`, whose calendar is closed for 450 days."""
    start = datetime.now(UTC).date() - timedelta(days=2)
    closed = ", ".join(f'"{start + timedelta(days=i)}"' for i in range(450))
    path = folder / "policies.yaml"
    path.write_text(f"""\
calendars:
  always: {{timezone: Asia/Dubai, always_open: true}}
  shut:
    timezone: Asia/Dubai
    hours: {{mon: ["07:30-15:30"], tue: ["07:30-15:30"], wed: ["07:30-15:30"], thu: ["07:30-15:30"]}}
    closed: [{closed}]
policies:
  - name: shut-for-a-year
    match: {{category: "poison.*"}}
    calendar: shut
    first_response: 1h
    resolution: 4h
  - name: live
    match: {{}}
    calendar: always
    first_response: 3s
    resolution: 4h
    warn_at: 0.5
""")
    return path


def test_poison_events_are_dead_lettered_and_the_worker_goes_on(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = prefixed_settings(kafka_bootstrap, poison_policies(tmp_path), "sla-poison")
    events_topic, ticks_topic = settings.topic("tawasul.events"), settings.topic("tawasul.sla.ticks")
    port = free_port()
    worker = WorkerProcess(settings, f"{settings.topic_prefix}worker", tmp_path / "state", metrics_port=port)
    try:
        worker.wait_ready()
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            for i, when in enumerate(OUT_OF_RANGE_TIMES):
                producer.send(events_topic, key=f"T-range-{i}".encode(), value=raw_opened(f"T-range-{i}", when))
            now = datetime.now(UTC).isoformat()
            for ticket in POISONED:
                producer.send(events_topic, key=ticket.encode(), value=raw_opened(ticket, now, "poison.closed"))
            far = datetime.now(UTC) + timedelta(days=365)  # would fire every deadline if obeyed
            for partition in range(6):
                producer.send(
                    ticks_topic, value=watermark_message(far, 0, run=settings.topic_prefix), partition=partition
                )
            producer.flush()
        finally:
            producer.close()
        patient = "T-poison-after-long"  # 1 h resolution target: a stray marker would breach it
        publish(
            kafka_bootstrap,
            events_topic,
            [opened("T-poison-after", datetime.now(UTC)), opened(patient, datetime.now(UTC))],
        )
        breach = "T-poison-after:first_response:sla.breached:0"
        wait_for(lambda: breach in outcome_types(settings), 60, "the breach after the poison events")
        figures = worker.scrape_and_stop(port)
    finally:
        if worker.proc.poll() is None:
            worker.kill()
    letters = [
        decode_dead_letter(value) for *_, value in read_all(kafka_bootstrap, [settings.topic("tawasul.deadletter")])
    ]
    by_ticket = {json.loads(letter.original)["subject"]: letter for letter in letters}
    assert set(by_ticket) == set(POISONED)  # the out-of-range times never reach a step
    assert all(re.match(r"sla: CalendarError: calendar 'shut': no working time", letter.reason) for letter in letters)
    assert all(letter.origin.startswith(f"{events_topic}:") for letter in letters)
    assert figures.get("tawasul_dead_letters_total", 0) == len(letters)
    assert figures.get("tawasul_sla_ticks_ignored_total", 0) == 6
    assert sum(1 for e in worker.logs if e.get("message") == IGNORED_MARKER_MESSAGE) == 6
    assert not any(i.startswith(f"{patient}:resolution") for i in outcome_types(settings))

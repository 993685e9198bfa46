"""Raw bytes written straight into `tawasul.events` with a plain Kafka producer, past intake:
each hostile message is dead-lettered by the database sink with a reason, the good events around
them are stored, and no personal value reaches the database, the dead-letter topic or a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from kafka import KafkaProducer
from sqlalchemy import select

from producers.simulator import Params, iter_events, parse_when
from sinks.consumer import SINK_TOPICS
from sinks.db.engine import make_engine
from sinks.db.models import StoredEvent
from tawasul.infra.deadletter import decode_dead_letter
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS, ensure_topics
from tests.integration.test_sink_kafka import SinkThread, wait_until
from tests.support.kafka import create_topic, read_all, unique

pytestmark = pytest.mark.kafka

PERMISSIVE_BYTES = 3 * 1024 * 1024
"""The events topic of this test takes 3 MB messages, as a carelessly configured cluster might."""
PERSONAL = ("050 123 4567", "fatima.k@example.ae", "784-1985-1234567-1", "+971 4 765 4321")


def ticket(time: str = "2025-03-03T09:00:00+04:00", **changes: Any) -> bytes:
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": unique("forged"),
        "source": "/channels/crm",
        "type": "ticket.opened",
        "time": time,
        "subject": unique("T"),
        "data": {"channel": "crm", "kind": "request", "category": "mosque.cleaning", "priority": "urgent"},
    }
    raw.update(changes)
    return json.dumps(raw).encode()


HOSTILE: list[tuple[str, bytes, str]] = [
    ("not json", b"this is not json", "event: not valid JSON"),
    ("not utf-8", b"\xff\xfe\x00\x01garbage", "event: not valid UTF-8"),
    ("empty", b"", "event: not valid JSON"),
    ("a JSON array", b"[1, 2, 3]", "event: must be a JSON object"),
    ("wrong schema", b'{"hello": "world"}', "specversion: required"),
    ("unknown type", ticket(type="ticket.exploded"), "type: unknown event type"),
    (
        "a forged SLA outcome",
        ticket(
            type="sla.breached",
            data={
                "ticket_id": "T-1",
                "target": "resolution",
                "policy": "p",
                "deadline": "2025-03-03T10:00:00+04:00",
                "channel": "crm",
                "kind": "request",
                "category": "x",
                "priority": "low",
            },
        ),
        "type: not an input event type",
    ),
    ("year 0001", ticket("0001-01-01T00:00:00Z"), "time: must lie on or after 2000-01-01"),
    ("year 9999", ticket("9999-12-31T23:59:59-04:00"), "time: must lie on or after 2000-01-01"),
    (
        "deadline-breaking data",
        ticket(data={"channel": "crm", "kind": "request", "category": "x", "priority": "asap"}),
        "data.priority: must be one of",
    ),
    (
        "2 MB valid JSON",
        ticket(
            data={
                "channel": "crm",
                "kind": "request",
                "category": "x",
                "priority": "low",
                "notes": "x" * (2 * 1024 * 1024),
            }
        ),
        "event: too large: ",
    ),
    ("2 MB junk", b"{" * (2 * 1024 * 1024), "event: too large: "),
    (
        "phone in a comment",
        json.dumps(
            {
                "specversion": "1.0",
                "id": "forged-survey",
                "source": "/channels/surveys",
                "type": "survey.submitted",
                "time": "2025-03-03T10:00:00+04:00",
                "subject": "C-forged",
                "data": {"channel": "call", "score": 1, "comment": f"call me on {PERSONAL[0]}"},
            }
        ).encode(),
        "data.comment: holds a phone number",
    ),
    ("e-mail in the subject", ticket(subject=f"complaint from {PERSONAL[1]}"), "subject: holds an e-mail address"),
    ("Emirates ID in an extension", ticket(customerid=PERSONAL[2]), "customerid: holds an Emirates ID number"),
    (
        "phone in a nested field",
        ticket(
            data={
                "channel": "crm",
                "kind": "request",
                "category": "x",
                "priority": "low",
                "contact": {"numbers": [PERSONAL[3]]},
            }
        ),
        "data.contact.numbers[0]: holds a phone number",
    ),
]


@pytest.fixture()
def settings(kafka_bootstrap: str, database_url: str) -> Iterator[Settings]:
    prefix = unique("inject") + "."
    create_topic(kafka_bootstrap, prefix + EVENTS.name, 6, {"max.message.bytes": str(PERMISSIVE_BYTES)})
    ensure_topics(kafka_bootstrap, prefix, (*SINK_TOPICS, DEAD_LETTER))
    yield Settings(kafka=kafka_bootstrap, database_url=database_url, topic_prefix=prefix)


def good_events() -> list[dict[str, Any]]:
    start = parse_when("2025-03-03T08:00:00+04:00")
    return list(iter_events(Params(start, start + timedelta(hours=3), seed=3, scale=0.1, tail=True)))


def test_hostile_bytes_are_dead_lettered_with_a_reason_and_good_neighbours_stored(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tawasul")
    good = good_events()
    assert len(good) > 2 * len(HOSTILE)
    topic = settings.topic(EVENTS.name)
    producer = KafkaProducer(bootstrap_servers=settings.kafka, max_request_size=PERMISSIVE_BYTES + 4096)
    sent: dict[tuple[int, int], str] = {}  # (partition, offset) of each hostile message -> its name
    try:
        step = len(good) // len(HOSTILE)
        for index, raw in enumerate(good):
            producer.send(topic, key=raw["subject"].encode(), value=json.dumps(raw).encode())
            if index % step == 0 and index // step < len(HOSTILE):  # each between good events of its subject
                name, value, _reason = HOSTILE[index // step]
                meta = producer.send(topic, key=raw["subject"].encode(), value=value).get(30)
                sent[(meta.partition, meta.offset)] = name
        assert len(sent) == len(HOSTILE)
        producer.send(topic, key=b"T-tombstone", value=None).get(30)  # a tombstone: nothing to store
        producer.flush(30)
    finally:
        producer.close()

    metrics = Metrics()
    sink = SinkThread(settings, unique("sink"), metrics, batch_max=50, batch_wait_s=0.2, assign=True)
    try:
        wait_until(lambda: sink.handled(topic) >= len(good) + len(HOSTILE) + 1, what="every message handled")
    finally:
        summary = sink.close()
    assert summary.skipped == len(HOSTILE)

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            stored = dict(connection.execute(select(StoredEvent.id, StoredEvent.payload)).tuples().all())
    finally:
        engine.dispose()
    assert set(stored) == {raw["id"] for raw in good}  # every good neighbour, nothing else

    dead_letter_topic = settings.topic(DEAD_LETTER.name)
    letters = [decode_dead_letter(value) for _t, _p, _k, value in read_all(settings.kafka, [dead_letter_topic])]
    by_name = {}
    for letter in letters:
        place = letter.origin.removeprefix(f"kafka:{topic}/").split("@")
        by_name[sent[(int(place[0]), int(place[1]))]] = letter
    assert set(by_name) == {name for name, _v, _r in HOSTILE} and len(letters) == len(HOSTILE)
    for name, _value, reason in HOSTILE:
        assert reason in by_name[name].reason, (name, by_name[name].reason)
    assert metrics.registry.get_sample_value(
        "tawasul_events_rejected_total", {"source_kind": "sink", "reason": "undecodable"}
    ) == len(HOSTILE)

    # no personal value was stored, dead-lettered or logged
    logged = " ".join(
        str(value) for record in caplog.records if record.name.startswith("tawasul") for value in vars(record).values()
    )
    assert "sink_undecodable" in logged
    dead = b" ".join(letter.to_json() for letter in letters).decode("utf-8", "replace")
    for value in PERSONAL:
        assert value not in " ".join(stored.values()) and value not in dead and value not in logged

"""The database sink end to end on the real broker, on SQLite and PostgreSQL: exactly once across restarts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import Engine, func, select, text

from producers.simulator import Params, iter_events, parse_when
from schemas import Event, SurveySubmittedData, new_event, parse_event
from sinks.consumer import SINK_TOPICS, SinkSummary, run_db_sink
from sinks.db import migrate
from sinks.db.engine import make_engine
from sinks.db.models import KpiSnapshot, SlaOutcome, StoredEvent, StoredPolicyBook, Survey, Ticket, TicketTarget
from sinks.db.records import EventRecord, OutcomeRecord, TicketState
from tawasul.domain.policies import default_policy_path
from tawasul.infra.deadletter import decode_dead_letter
from tawasul.infra.metrics import Metrics
from tawasul.infra.policy_books import read_policy_file
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS, KPIS, POLICIES, SLA_OUTCOMES, TICKET_STATE, ensure_topics
from tests.support.kafka import read_all, unique

pytestmark = pytest.mark.kafka


def wait_until(check: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class SinkThread:
    """`run_db_sink` in a thread, with its progress and summary."""

    def __init__(self, settings: Settings, group: str, metrics: Metrics, **options: Any) -> None:
        self.stop = threading.Event()
        self.progress: dict[str, int] = {}
        self.summary: SinkSummary | None = None
        self.error: BaseException | None = None

        def target() -> None:
            try:
                self.summary = run_db_sink(
                    settings,
                    stop=self.stop,
                    metrics=metrics,
                    group_id=group,
                    on_progress=self.progress.update,
                    **options,
                )
            except BaseException as exc:  # handed to the test thread
                self.error = exc

        self.thread = threading.Thread(target=target, name="db-sink", daemon=True)
        self.thread.start()

    def handled(self, topic: str) -> int:
        if self.error is not None:
            raise AssertionError("the sink failed") from self.error
        return self.progress.get(topic, 0)

    def close(self) -> SinkSummary:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise AssertionError("the sink failed") from self.error
        assert self.summary is not None
        return self.summary


def simulated_events(scale: float = 0.08) -> list[Event]:
    start = parse_when("2025-03-03")
    params = Params(start, start + timedelta(days=1), seed=5, scale=scale, tail=True)
    return [parse_event(raw) for raw in iter_events(params)]


def publish(bootstrap: str, topic: str, messages: Sequence[tuple[str | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for key, value in messages:
            producer.send(topic, key=None if key is None else key.encode("utf-8"), value=value)
        producer.flush(30)
    finally:
        producer.close()


def committed(bootstrap: str, group: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def rows(engine: Engine, model: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture()
def settings(kafka_bootstrap: str, database_url: str) -> Iterator[Settings]:
    prefix = unique("sinktest") + "."
    ensure_topics(kafka_bootstrap, prefix, SINK_TOPICS)
    yield Settings(kafka=kafka_bootstrap, database_url=database_url, topic_prefix=prefix)


def pipeline_messages() -> dict[str, list[tuple[str | None, bytes]]]:
    """A few outcomes, ticket states (one late and older) and KPI snapshots."""
    outcome = new_event(
        "sla.breached",
        "T-9",
        "2025-03-04T11:30:00+04:00",
        {
            "ticket_id": "T-9",
            "target": "resolution",
            "policy": "crm-standard",
            "deadline": "2025-03-04T11:30:00+04:00",
            "channel": "crm",
            "kind": "request",
            "category": "licensing.renewal",
            "priority": "normal",
        },
        source="/stream-processors/sla",
        id="T-9:resolution:sla.breached:0",
    )

    def state(version: int, status: str) -> bytes:
        return json.dumps(
            {
                "ticket_id": "T-9",
                "channel": "crm",
                "kind": "request",
                "category": "licensing.renewal",
                "priority": "normal",
                "department": None,
                "status": status,
                "policy": "crm-standard",
                "opened_at": "2025-03-03T09:00:00+04:00",
                "resolved_at": None,
                "closed_at": None,
                "updated_at": "2025-03-04T11:30:00+04:00",
                "version": version,
                "targets": {
                    "resolution": {
                        "deadline": "2025-03-04T11:30:00+04:00",
                        "state": "breached",
                        "warned": True,
                        "breached": True,
                    }
                },
            }
        ).encode("utf-8")

    snapshot = new_event(
        "kpi.snapshot",
        "calls.service_level|15m|",
        "2025-03-03T10:15:00+04:00",
        {
            "figure": "calls.service_level",
            "window": "15m",
            "scope": {},
            "value": 0.75,
            "count": 12,
            "as_of": "2025-03-03T10:15:00+04:00",
        },
        source="/stream-processors/kpi",
        id="kpi-1",
    )
    book_key, book = read_policy_file(default_policy_path()).message("worker", datetime(2025, 3, 3, tzinfo=UTC))
    return {
        POLICIES.name: [(book_key.decode(), book), (book_key.decode(), book)],  # a worker started twice
        SLA_OUTCOMES.name: [("T-9", outcome.to_json()), ("T-9", outcome.to_json())],
        TICKET_STATE.name: [("T-9", state(4, "open")), ("T-9", state(2, "open"))],
        KPIS.name: [("calls.service_level|15m|", snapshot.to_json())],
    }


@pytest.mark.parametrize("assign", [False, True], ids=["group", "assigned"])
def test_sink_stores_everything_once_across_restarts(settings: Settings, assign: bool) -> None:
    """As the live sink (a group member, kafka-python) and as the replay's (every partition
    assigned, read through aiokafka)."""
    bootstrap = settings.kafka
    events = simulated_events()
    event_messages = [(event.subject, event.to_json()) for event in events]
    events_topic = settings.topic(EVENTS.name)
    publish(bootstrap, events_topic, [*event_messages, ("broken", b"{not json")])
    others = pipeline_messages()
    for name, messages in others.items():
        publish(bootstrap, settings.topic(name), messages)
    group = unique("sink-group")
    metrics = Metrics()
    engine = make_engine(settings.database_url)
    try:
        seen: list[object] = []
        sink = SinkThread(
            settings, group, metrics, batch_max=200, batch_wait_s=0.2, on_record=seen.append, assign=assign
        )
        expected = {events_topic: len(events) + 1, **{settings.topic(n): len(m) for n, m in others.items()}}
        wait_until(lambda: all(sink.handled(t) >= n for t, n in expected.items()), what="the first pass")
        first = sink.close()
        assert first.skipped == 1
        assert first.records == expected
        assert sum(isinstance(r, EventRecord) for r in seen) == len(events)  # every decoded record, once
        assert sum(isinstance(r, TicketState) for r in seen) == 2
        assert [r.type for r in seen if isinstance(r, Event)] == ["kpi.snapshot"]
        assert [r.type for r in seen if isinstance(r, OutcomeRecord)] == ["sla.breached", "sla.breached"]

        assert rows(engine, StoredEvent) == len(events)
        with engine.connect() as connection:
            stored = dict(connection.execute(select(StoredEvent.id, StoredEvent.payload)).tuples().all())
            ticket = connection.execute(select(Ticket.version, Ticket.status)).one()
        assert {event.id: event for event in events} == {i: parse_event(json.loads(p)) for i, p in stored.items()}
        assert tuple(ticket) == (4, "open")
        assert rows(engine, TicketTarget) == 1 and rows(engine, SlaOutcome) == 1 and rows(engine, KpiSnapshot) == 1
        assert rows(engine, StoredPolicyBook) == 1
        assert committed(bootstrap, group, events_topic) == end_offsets(bootstrap, events_topic) == len(events) + 1
        registry = metrics.registry
        assert registry.get_sample_value("tawasul_database_up") == 1.0
        assert registry.get_sample_value("tawasul_sink_rows_written_total", {"table": "events"}) == len(events)
        assert (
            registry.get_sample_value("tawasul_events_rejected_total", {"source_kind": "sink", "reason": "undecodable"})
            == 1.0
        )

        # a restart resumes from the committed offsets; the same events published again change nothing
        publish(bootstrap, events_topic, event_messages)
        restarted = SinkThread(settings, group, Metrics(), batch_max=200, batch_wait_s=0.2, assign=assign)
        wait_until(lambda: restarted.handled(events_topic) >= len(events), what="the second pass")
        second = restarted.close()
        assert second.records[events_topic] == len(events)  # only the new messages were read
        assert second.rows.get("events", 0) == 0
        assert rows(engine, StoredEvent) == len(events)
        assert rows(engine, SlaOutcome) == 1
        assert committed(bootstrap, group, events_topic) == 2 * len(events) + 1
    finally:
        engine.dispose()


def reject_five_point_surveys(database_url: str) -> None:
    """A real database rule the sink does not know about: it rejects surveys scored 5."""
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER no_fives BEFORE INSERT ON surveys WHEN NEW.score = 5 "
                    "BEGIN SELECT RAISE(ABORT, 'no fives'); END"
                )
            )
        else:
            connection.execute(text("ALTER TABLE surveys ADD CONSTRAINT no_fives CHECK (score < 5) NOT VALID"))
    engine.dispose()


def test_bad_messages_and_rejected_rows_are_skipped_alone(settings: Settings) -> None:
    bootstrap = settings.kafka
    events = simulated_events(scale=0.05)
    fives = {e.id for e in events if isinstance(e.data, SurveySubmittedData) and e.data.score == 5}
    assert fives and len(fives) < len(events)
    reject_five_point_surveys(settings.database_url)
    publish(bootstrap, settings.topic(EVENTS.name), [(e.subject, e.to_json()) for e in events])
    state_topic = settings.topic(TICKET_STATE.name)
    bad_states = [("T-1", b'{"ticket_id": "T-1", "version": "three"}'), ("T-2", b"\xff\xfe"), ("T-3", b"[]")]
    publish(bootstrap, state_topic, bad_states)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(state_topic, key=b"T-4", value=None)  # a tombstone: nothing to store, no error
    producer.flush(30)
    producer.close()
    metrics = Metrics()
    sink = SinkThread(settings, unique("sink-group"), metrics, batch_max=100, batch_wait_s=0.2)
    wait_until(
        lambda: (
            sink.handled(settings.topic(EVENTS.name)) >= len(events)
            and sink.handled(state_topic) >= len(bad_states) + 1
        ),
        what="every message",
    )
    summary = sink.close()
    assert summary.skipped == len(fives) + len(bad_states)
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            stored = set(connection.execute(select(StoredEvent.id)).scalars())
            surveys = connection.execute(select(func.count()).select_from(Survey)).scalar_one()
        assert stored == {e.id for e in events} - fives  # only the rejected records are missing
        assert surveys == sum(1 for e in events if e.type == "survey.submitted") - len(fives)
        assert rows(engine, Ticket) == 0
    finally:
        engine.dispose()
    registry = metrics.registry
    assert registry.get_sample_value("tawasul_database_errors_total", {"kind": "rejected_row"}) == len(fives)
    assert registry.get_sample_value(
        "tawasul_events_rejected_total", {"source_kind": "sink", "reason": "undecodable"}
    ) == len(bad_states)

    # nothing skipped is lost: each is on the dead-letter topic with its reason and origin
    letters = [
        decode_dead_letter(value) for _t, _p, _k, value in read_all(bootstrap, [settings.topic(DEAD_LETTER.name)])
    ]
    assert registry.get_sample_value("tawasul_dead_letters_total", {"source_kind": "sink"}) == len(letters)
    undecodable = {letter.original: letter for letter in letters if letter.origin.startswith("kafka:")}
    assert set(undecodable) == {value for _key, value in bad_states}
    assert all(letter.origin.startswith(f"kafka:{state_topic}/") for letter in undecodable.values())
    assert {value: letter.reason for value, letter in undecodable.items()} == {
        bad_states[0][1]: "ticket state: version must be an integer from 0 to 2^31-1",
        b"\xff\xfe": "UnicodeDecodeError",
        b"[]": "ticket state: not a JSON object",
    }
    refused = [letter for letter in letters if letter.origin == "sink:EventRecord"]
    assert {json.loads(letter.original)["id"] for letter in refused} == fives
    assert {letter.reason for letter in refused} <= {
        "the database refused it: IntegrityError",
        "the database refused it: CheckViolation",
    }
    assert len(letters) == len(bad_states) + len(fives)


def test_offsets_wait_for_the_dead_letters(settings: Settings) -> None:
    """A dead letter Kafka refuses (larger than its topic allows) holds the batch's offsets:
    the sink retries and commits nothing; once the topic takes it, the offsets follow."""
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    bootstrap = settings.kafka
    dead_letter_topic = settings.topic(DEAD_LETTER.name)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(dead_letter_topic, 1, 1, topic_configs={"max.message.bytes": "200"})])
    finally:
        admin.close()
    events_topic = settings.topic(EVENTS.name)
    events = simulated_events(scale=0.02)
    publish(bootstrap, events_topic, [*[(e.subject, e.to_json()) for e in events], ("junk", b"x" * 300)])
    group, metrics = unique("sink-group"), Metrics()
    sink = SinkThread(settings, group, metrics, batch_max=10_000, batch_wait_s=0.5)
    engine = make_engine(settings.database_url)
    try:
        wait_until(
            lambda: (
                (metrics.registry.get_sample_value("tawasul_database_up") or 0) == 1.0
                and rows(engine, StoredEvent) == len(events)
            ),
            what="the events stored",
        )
        time.sleep(2.0)  # retries of the refused letter meanwhile
        assert sink.close().skipped == 1
        assert committed(bootstrap, group, events_topic) == 0
        assert metrics.registry.get_sample_value("tawasul_dead_letters_total", {"source_kind": "sink"}) is None

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, dead_letter_topic, configs={"max.message.bytes": "1048588"})]
            )
        finally:
            admin.close()
        again = SinkThread(settings, group, Metrics(), batch_max=10_000, batch_wait_s=0.5)
        wait_until(lambda: again.handled(events_topic) >= len(events) + 1, what="the second pass")
        assert again.close().rows.get("events", 0) == 0  # stored the first time: nothing new
        assert committed(bootstrap, group, events_topic) == len(events) + 1
        letters = [decode_dead_letter(value) for _t, _p, _k, value in read_all(bootstrap, [dead_letter_topic])]
        assert [letter.original for letter in letters] == [b"x" * 300]
    finally:
        engine.dispose()

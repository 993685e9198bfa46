"""The SLA stream processor on the real broker: live deadlines on time, replay gives the same outcomes.

One live scenario (module fixture) is lived through on the wall clock: tickets with a 5 s
first-response target that stay untouched (warning at 3 s, breach at 5 s), tickets answered
in time, tickets answered after the warning but before the deadline, and resolved tickets.
The same events, written to a JSON Lines file, are then replayed on the event-time clock, in
order and shuffled within the allowed lateness.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from schemas import Event, decode_event, new_event
from stream_processors.app import build_app
from stream_processors.runner import AppThread, input_drained, send_end_of_input
from tawasul.infra.settings import Settings
from tawasul.infra.topics import ensure_topics
from tests.support.kafka import unique

FIRST_RESPONSE = timedelta(seconds=5)
WARN_AT = 0.6
POLICIES = """\
calendars:
  always: {timezone: Asia/Dubai, always_open: true}
policies:
  - name: fast
    match: {}
    calendar: always
    first_response: 5s
    resolution: 1h
    warn_at: 0.6
"""
SOURCE = "/channels/test/sla"


def write_policies(folder: Path) -> Path:
    path = folder / "policies.yaml"
    path.write_text(POLICIES)
    return path


def prefixed_settings(bootstrap: str, policies: Path, name: str) -> Settings:
    settings = Settings(kafka=bootstrap, policies=policies, topic_prefix=f"{unique(name)}.")
    ensure_topics(bootstrap, settings.topic_prefix)
    return settings


@dataclass(frozen=True)
class Ticket:
    """A scenario ticket: opened at `opened`, acknowledged / resolved after these offsets (or never)."""

    id: str
    opened: datetime
    ack_after: timedelta | None = None
    resolve_after: timedelta | None = None


def scenario_tickets(start: datetime, run: str, count: int = 6) -> list[Ticket]:
    """`count` tickets of each kind, opened 0.25 s apart."""
    tickets: list[Ticket] = []
    kinds = (
        ("idle", None, None),
        ("quick", timedelta(seconds=1), None),
        ("late-ack", timedelta(seconds=4), None),
        ("resolved", timedelta(seconds=1), timedelta(seconds=2)),
    )
    step = 0
    for name, ack, resolve in kinds:
        for i in range(count):
            tickets.append(Ticket(f"T-{run}-{name}-{i}", start + step * timedelta(milliseconds=250), ack, resolve))
            step += 1
    return tickets


def ticket_events(ticket: Ticket) -> list[Event]:
    data = {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"}
    events = [new_event("ticket.opened", ticket.id, ticket.opened, data, SOURCE, id=f"{ticket.id}-open")]
    if ticket.ack_after is not None:
        events.append(
            new_event(
                "ticket.acknowledged", ticket.id, ticket.opened + ticket.ack_after, {}, SOURCE, id=f"{ticket.id}-ack"
            )
        )
    if ticket.resolve_after is not None:
        events.append(
            new_event(
                "ticket.resolved",
                ticket.id,
                ticket.opened + ticket.resolve_after,
                {},
                SOURCE,
                id=f"{ticket.id}-resolved",
            )
        )
    return events


def scenario_events(tickets: Iterable[Ticket]) -> list[Event]:
    return sorted((e for t in tickets for e in ticket_events(t)), key=lambda e: e.time)


def publish(bootstrap: str, topic: str, events: Iterable[Event], *, on_time: bool = False) -> None:
    """Publish events keyed by subject; `on_time` waits for each event's time first (live)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for event in events:
            if on_time:
                time.sleep(max(0.0, event.time.timestamp() - time.time()))
            producer.send(topic, key=event.subject.encode(), value=event.to_json())
            if on_time:
                producer.flush()
        producer.flush()
    finally:
        producer.close()


def read_outcomes(settings: Settings) -> list[tuple[Event, float]]:
    """Every outcome event with its Kafka record timestamp (seconds)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topic("tawasul.sla.outcomes")
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        found: list[tuple[Event, float]] = []
        give_up = time.monotonic() + 15
        while time.monotonic() < give_up and any(consumer.position(tp) < end[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=500).values():
                found.extend((decode_event(r.value), r.timestamp / 1000) for r in batch)
        return found
    finally:
        consumer.close()


def outcome_set(outcomes: Iterable[Event]) -> dict[str, dict[str, object]]:
    """Outcomes by id, deduplicated, as comparable dicts (type, time, subject, data)."""
    return {e.id: {"type": e.type, "time": e.time, "subject": e.subject, "data": e.to_dict()["data"]} for e in outcomes}


def write_jsonl(path: Path, events: Iterable[Event]) -> Path:
    path.write_text("".join(e.to_json().decode() + "\n" for e in events))
    return path


def replay_file(bootstrap: str, policies: Path, path: Path, name: str, end: datetime) -> list[Event]:
    """Replay a JSON Lines file on the event-time clock (as `tawasul replay` drives it)."""
    settings = prefixed_settings(bootstrap, policies, name)
    app_id = f"{settings.topic_prefix}replay"
    app = build_app(settings, mode="replay", app_id=app_id, datadir=path.parent / f"faust-{name}")
    events = [decode_event(line.encode()) for line in path.read_text().splitlines()]
    with AppThread(app) as running:
        running.wait_ready(timeout_s=45)
        publish(bootstrap, settings.topic("tawasul.events"), events)
        send_end_of_input(settings, end)
        running.wait_until(lambda: input_drained(settings, app_id), timeout_s=45, poll_s=0.5)
    return [e for e, _ in read_outcomes(settings)]


@dataclass(frozen=True)
class LiveRun:
    tickets: list[Ticket]
    events: list[Event]
    outcomes: list[tuple[Event, float]]
    policies: Path
    end: datetime


@pytest.fixture(scope="module")
def live_run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    folder = tmp_path_factory.mktemp("sla-live")
    policies = write_policies(folder)
    settings = prefixed_settings(kafka_bootstrap, policies, "sla-live")
    app = build_app(settings, mode="live", app_id=f"{settings.topic_prefix}live", datadir=folder / "faust")
    with AppThread(app) as running:
        running.wait_ready(timeout_s=45)
        start = datetime.now(UTC) + timedelta(seconds=1)
        tickets = scenario_tickets(start, "live")
        events = scenario_events(tickets)
        publish(kafka_bootstrap, settings.topic("tawasul.events"), events, on_time=True)
        last_deadline = max(t.opened for t in tickets) + FIRST_RESPONSE
        time.sleep(max(0.0, last_deadline.timestamp() - time.time()) + 2.0)
    yield LiveRun(tickets, events, read_outcomes(settings), policies, last_deadline + timedelta(seconds=30))


def by_ticket(outcomes: Iterable[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = {}
    for event in outcomes:
        grouped.setdefault(event.subject, []).append(event)
    return grouped


def test_live_outcomes_on_time_and_once(live_run: LiveRun) -> None:
    events = [e for e, _ in live_run.outcomes]
    assert len({e.id for e in events}) == len(events), "an outcome was published twice"
    grouped = by_ticket(events)
    for ticket in live_run.tickets:
        kinds = sorted((e.type, e.data.target) for e in grouped.get(ticket.id, []))
        deadline = ticket.opened + FIRST_RESPONSE
        if ticket.ack_after is None:
            assert kinds == [("sla.breached", "first_response"), ("sla.warning", "first_response")]
        elif ticket.ack_after <= FIRST_RESPONSE * WARN_AT:
            expected = [("sla.met", "first_response")]
            if ticket.resolve_after is not None:
                expected.append(("sla.met", "resolution"))
            assert kinds == sorted(expected)
        else:
            assert kinds == [("sla.met", "first_response"), ("sla.warning", "first_response")]
        for event in grouped.get(ticket.id, []):
            if event.data.target == "first_response":
                assert event.data.deadline == deadline
    for event, stamp in live_run.outcomes:
        if event.type == "sla.breached":
            assert event.time == event.data.deadline
            late = stamp - event.data.deadline.timestamp()
            assert 0 <= late <= 1.0, f"breach emitted {late:.3f} s after its deadline"
        if event.type == "sla.warning":
            opened = event.data.deadline - FIRST_RESPONSE
            assert event.time == opened + FIRST_RESPONSE * WARN_AT
            assert 0 <= stamp - event.time.timestamp() <= 1.0


def test_replay_from_file_gives_identical_outcomes(live_run: LiveRun, kafka_bootstrap: str, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "scenario.jsonl", live_run.events)
    replayed = replay_file(kafka_bootstrap, live_run.policies, path, "sla-replay", live_run.end)
    assert len({e.id for e in replayed}) == len(replayed)
    assert outcome_set(replayed) == outcome_set(e for e, _ in live_run.outcomes)


def test_out_of_order_within_lateness_gives_same_outcomes(
    live_run: LiveRun, kafka_bootstrap: str, tmp_path: Path
) -> None:
    shuffled = list(live_run.events)
    random.Random(7).shuffle(shuffled)  # every event is at most ~10 s from its place: within the 5 min lateness
    for ticket in live_run.tickets:  # and at least one ticket sees its acknowledgement before its opening
        if ticket.ack_after is not None:
            opened, ack = (shuffled.index(e) for e in ticket_events(ticket)[:2])
            if opened < ack:
                shuffled[opened], shuffled[ack] = shuffled[ack], shuffled[opened]
            break
    assert [e.id for e in shuffled] != [e.id for e in live_run.events]
    path = write_jsonl(tmp_path / "shuffled.jsonl", shuffled)
    replayed = replay_file(kafka_bootstrap, live_run.policies, path, "sla-shuffled", live_run.end)
    assert outcome_set(replayed) == outcome_set(e for e, _ in live_run.outcomes)

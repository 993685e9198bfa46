"""Personal data on the real broker and databases: phone numbers, e-mail addresses and Emirates ID
numbers placed anywhere in events that go through intake reach no topic, no table, no log line
and no metric: as a hypothesis property, and as a scan after a simulated day published with the
code of `tawasul publish` and stored by the sink."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from sqlalchemy import select

from producers.intake import accept_object
from producers.lines import publish_lines
from producers.publisher import EventPublisher
from producers.simulator import Params, iter_events, parse_when
from sinks.consumer import SINK_TOPICS
from sinks.db.engine import make_engine
from sinks.db.models import Base
from tawasul.infra.metrics import Metrics
from tawasul.infra.pseudonymise import Pseudonymiser
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS, ensure_topics
from tests.integration.test_sink_kafka import SinkThread, wait_until
from tests.support.kafka import read_all, unique
from tests.unit.test_personal_data import EMAILS, EMIRATES_IDS, PHONES, events_with_personal_data

pytestmark = pytest.mark.kafka

KEY = Pseudonymiser(b"integration-test-key-0123456789")
FULL = os.environ.get("TAWASUL_FULL_PRIVACY_SCAN") == "1"
"""Set to 1 for a simulated day at full volume (CI: a tenth)."""
_ASCII = {c: 48 + (c - b) % 10 for b in (0x660, 0x6F0) for c in range(b, b + 10)}


def spellings(value: str) -> set[str]:
    """The value as written, with ASCII digits, and as its bare digits when it has 9 or more."""
    ascii_value = value.translate(_ASCII)
    digits = "".join(ch for ch in ascii_value if ch.isdigit())
    return {value, ascii_value} | ({digits} if len(digits) >= 9 else set())


def squeeze(text: str) -> str:
    return "".join(ch for ch in text.translate(_ASCII) if ch not in " -.()+")


def leaks(values: Iterable[str], haystacks: Iterable[str]) -> list[tuple[str, str]]:
    """(value, where) for every value found in a haystack, as written or with separators removed."""
    wanted = {spelling for value in values for spelling in spellings(value)}
    found = []
    for haystack in haystacks:
        plain, squeezed = haystack.translate(_ASCII), squeeze(haystack)
        found += [(value, haystack[:200]) for value in wanted if value in plain or squeeze(value) in squeezed]
    return found


def everything_stored(settings: Settings, metrics: Metrics, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every message of the run's topics, every database row, every tawasul log record and metric."""
    texts = [
        value.decode("utf-8", "replace") if value else ""
        for _t, _p, _k, value in read_all(
            settings.kafka, [settings.topic(spec.name) for spec in (*SINK_TOPICS, DEAD_LETTER)]
        )
    ]
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                texts += [" ".join(str(cell) for cell in row) for row in connection.execute(select(table))]
    finally:
        engine.dispose()
    texts += [
        " ".join(str(value) for value in vars(record).values())
        for record in caplog.records
        if record.name.startswith("tawasul")
    ]
    texts += generate_latest(metrics.registry).decode().splitlines()
    return texts


@pytest.fixture()
def settings(kafka_bootstrap: str, database_url: str) -> Iterator[Settings]:
    prefix = unique("privacy") + "."
    ensure_topics(kafka_bootstrap, prefix, (*SINK_TOPICS, DEAD_LETTER))
    yield Settings(kafka=kafka_bootstrap, database_url=database_url, topic_prefix=prefix)


def sink_everything(settings: Settings, metrics: Metrics, messages: int) -> None:
    sink = SinkThread(settings, unique("sink"), metrics, batch_max=500, batch_wait_s=0.2, assign=True)
    try:
        wait_until(lambda: sink.handled(settings.topic(EVENTS.name)) >= messages, what="every event handled")
    finally:
        sink.close()


def test_property_no_personal_value_reaches_a_topic_the_database_or_a_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tawasul")
    metrics = Metrics()
    placed: list[str] = []
    outcomes = {"accepted": 0, "rejected": 0}

    with EventPublisher(settings, client_id="privacy-test", metrics=metrics) as publisher:

        @hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(events_with_personal_data(), min_size=1, max_size=6), st.booleans())
        def publish(cases: list[tuple[dict[str, Any], str]], with_key: bool) -> None:
            for raw, value in cases:
                raw = {**raw, "id": f"{uuid.uuid4().hex}-{raw['id']}"}
                outcome = accept_object(raw, "property", KEY if with_key else None)
                publisher.route(outcome, source_kind="http")
                outcomes["accepted" if hasattr(outcome, "value") else "rejected"] += 1
                placed.append(value)

        publish()
        publisher.flush()
    assert outcomes["accepted"] > 20 and outcomes["rejected"] > 0  # ids and subjects refused without a key
    sink_everything(settings, metrics, outcomes["accepted"])
    haystacks = everything_stored(settings, metrics, caplog)
    assert any("[phone]" in text for text in haystacks)  # what was redacted did travel
    assert leaks(placed, haystacks) == []


def simulated_day_with_personal_data(scale: float) -> tuple[list[bytes], list[str]]:
    """A simulated day (JSON Lines) with personal data in survey comments, raw caller numbers,
    ticket extension attributes and nested fields; and the values placed."""
    start = parse_when("2025-03-03")
    values = PHONES + EMAILS + EMIRATES_IDS
    lines, placed = [], []
    for index, raw in enumerate(iter_events(Params(start, start + timedelta(days=1), seed=9, scale=scale, tail=True))):
        value = values[index % len(values)]
        if raw["type"] == "survey.submitted":
            raw["data"]["comment"] = f"شكرا، اتصلوا بي على {value} please"
        elif raw["type"] == "call.offered" and index % 2:
            raw["data"]["caller_number"] = PHONES[index % len(PHONES)]
            value = PHONES[index % len(PHONES)]
        elif raw["type"] == "ticket.opened":
            raw["contactinfo"] = f"reach me at {value}"
            raw["data"]["details"] = {"history": [f"called from {value}", 3]}
        else:
            value = ""
        if value:
            placed.append(value)
        lines.append(json.dumps(raw, ensure_ascii=False).encode())
    return lines, placed


def test_a_simulated_day_leaves_no_personal_data_in_any_topic_table_log_or_metric(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tawasul")
    lines, placed = simulated_day_with_personal_data(1.0 if FULL else 0.1)
    assert len(placed) > 30
    metrics = Metrics()
    with EventPublisher(settings, client_id="privacy-day", metrics=metrics) as publisher:
        summary = publish_lines(io.BytesIO(b"\n".join(lines)), "day.jsonl", publisher, KEY, max_skew=None)
        publisher.flush()
    assert (summary.published, summary.rejected) == (len(lines), 0)
    sink_everything(settings, metrics, len(lines))
    haystacks = everything_stored(settings, metrics, caplog)
    assert sum(text.count("[phone]") for text in haystacks if text.startswith("{")) > 0
    assert leaks(placed, haystacks) == []

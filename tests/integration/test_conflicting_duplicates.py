"""Conflicting duplicates on the real broker, SQLite and PostgreSQL: an event whose id is already
stored with other content is dead-lettered with reason `conflicting_duplicate` and both digests,
counted, and changes nothing; an identical repeat stays a silent no-op."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from schemas import new_event
from sinks.consumer import SINK_TOPICS
from sinks.db.engine import make_engine
from sinks.db.models import Call, StoredEvent, Survey
from sinks.db.writer import content_digest
from tawasul.infra.deadletter import decode_dead_letter
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS, ensure_topics
from tests.integration.test_sink_kafka import SinkThread, publish, wait_until
from tests.support.kafka import read_all, unique

pytestmark = pytest.mark.kafka


@pytest.fixture()
def settings(kafka_bootstrap: str, database_url: str) -> Iterator[Settings]:
    prefix = unique("conflicts") + "."
    ensure_topics(kafka_bootstrap, prefix, (*SINK_TOPICS, DEAD_LETTER))
    yield Settings(kafka=kafka_bootstrap, database_url=database_url, topic_prefix=prefix)


def body(event_type: str, subject: str, time: str, data: dict[str, Any], event_id: str) -> bytes:
    return new_event(event_type, subject, time, data, source="/channels/pbx/main", id=event_id).to_json()


def respelt(value: bytes) -> bytes:
    """The same content in another spelling: keys reversed, spaces after separators."""
    return json.dumps(dict(reversed(list(json.loads(value).items()))), indent=1).encode()


def test_conflicting_duplicates_are_dead_lettered_identical_repeats_ignored(settings: Settings) -> None:
    offered = body("call.offered", "C-1", "2025-03-03T09:00:00+04:00", {"queue": "general"}, "c1-offered")
    answered = body(
        "call.answered", "C-1", "2025-03-03T09:00:20+04:00", {"queue": "general", "agent": "agent-001"}, "c1-answered"
    )
    survey = body("survey.submitted", "C-1", "2025-03-03T09:10:00+04:00", {"channel": "call", "score": 4}, "c1-survey")
    forged_answer = body(
        "call.answered", "C-1", "2025-03-03T09:00:02+04:00", {"queue": "general", "agent": "agent-999"}, "c1-answered"
    )
    forged_survey = body(
        "survey.submitted", "C-1", "2025-03-03T09:10:00+04:00", {"channel": "call", "score": 1}, "c1-survey"
    )
    new_first = body("call.offered", "C-2", "2025-03-03T09:05:00+04:00", {"queue": "general"}, "c2-offered")
    new_second = body("call.offered", "C-2", "2025-03-03T09:05:00+04:00", {"queue": "vip"}, "c2-offered")
    neighbour = body("call.abandoned", "C-2", "2025-03-03T09:06:00+04:00", {"queue": "general"}, "c2-abandoned")

    events_topic = settings.topic(EVENTS.name)
    metrics = Metrics()
    sink = SinkThread(settings, unique("sink"), metrics, batch_max=500, batch_wait_s=0.3, assign=True)
    engine = make_engine(settings.database_url)
    try:
        publish(settings.kafka, events_topic, [("C-1", offered), ("C-1", answered), ("C-1", survey)])
        wait_until(lambda: sink.handled(events_topic) >= 3, what="the first events stored")
        publish(
            settings.kafka,
            events_topic,
            [
                ("C-1", respelt(answered)),
                ("C-1", forged_answer),
                ("C-1", answered),
                ("C-1", forged_survey),
                ("C-2", new_first),
                ("C-2", new_second),
                ("C-2", neighbour),
            ],
        )
        wait_until(lambda: sink.handled(events_topic) >= 10, what="the repeats handled")
        summary = sink.close()
        assert summary.skipped == 0
        with engine.connect() as connection:
            payloads = dict(connection.execute(select(StoredEvent.id, StoredEvent.payload)).tuples().all())
            agent, wait = connection.execute(select(Call.agent, Call.wait_seconds).where(Call.call_id == "C-1")).one()
            score = connection.execute(select(Survey.score)).scalar_one()
        # the first version stays, and nothing the conflicting ones say reached calls or surveys
        assert payloads == {
            "c1-offered": offered.decode(),
            "c1-answered": answered.decode(),
            "c1-survey": survey.decode(),
            "c2-offered": new_first.decode(),
            "c2-abandoned": neighbour.decode(),
        }
        assert agent == "agent-001" and wait == 20.0
        assert score == 4
    finally:
        engine.dispose()

    dead_letter_topic = settings.topic(DEAD_LETTER.name)
    letters = [decode_dead_letter(value) for _t, _p, _k, value in read_all(settings.kafka, [dead_letter_topic])]
    expected = {
        (content_digest(answered.decode()), content_digest(forged_answer.decode())),
        (content_digest(survey.decode()), content_digest(forged_survey.decode())),
        (content_digest(new_first.decode()), content_digest(new_second.decode())),
    }
    assert len(letters) == 3
    assert {letter.original for letter in letters} == {forged_answer, forged_survey, new_second}
    for letter in letters:
        assert letter.reason.startswith("conflicting_duplicate: id ")
        assert letter.origin == "sink:EventRecord"
    assert {
        tuple(word for word in letter.reason.replace(",", " ").replace(")", " ").split() if len(word) == 64)
        for letter in letters
    } == expected
    assert metrics.registry.get_sample_value("tawasul_conflicting_duplicates_total", {"stage": "sink"}) == 3
    # an identical repeat, however it is spelt, has the same digest and is no conflict
    assert content_digest(respelt(answered).decode()) == content_digest(answered.decode())

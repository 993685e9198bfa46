"""A PostgreSQL outage under the running sink: it pauses, commits nothing it has not stored, shows its
growing lag meanwhile, catches up."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from sinks.consumer import SINK_TOPICS, Backoff
from sinks.db.engine import make_engine
from sinks.db.models import Call, StoredEvent
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings
from tawasul.infra.topics import EVENTS, ensure_topics
from tests.integration.test_sink_kafka import SinkThread, committed, publish, simulated_events, wait_until
from tests.support.kafka import unique
from tests.support.postgres import TempPostgres

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture()
def server() -> Iterator[TempPostgres]:
    base = Path(tempfile.mkdtemp(prefix="tawasul-outage-"))
    postgres = TempPostgres(base)
    postgres.init()
    postgres.start()
    postgres.create_database()
    yield postgres
    postgres.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("assign", [False, True], ids=["group", "assigned"])
def test_sink_survives_a_database_outage(kafka_bootstrap: str, server: TempPostgres, assign: bool) -> None:
    prefix = unique("outage") + "."
    ensure_topics(kafka_bootstrap, prefix, SINK_TOPICS)
    settings = Settings(kafka=kafka_bootstrap, database_url=server.url, topic_prefix=prefix)
    topic = settings.topic(EVENTS.name)
    events = simulated_events(scale=0.1)
    half = len(events) // 2
    first, second = events[:half], events[half:]
    group = unique("outage-group")
    metrics = Metrics()
    registry = metrics.registry
    engine = make_engine(server.url)

    def stored() -> int:
        """Stored events; 0 while the sink has not created its tables yet."""
        if not inspect(engine).has_table(StoredEvent.__tablename__):
            return 0
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(StoredEvent)).scalar_one())

    def lag() -> float | None:
        return registry.get_sample_value("tawasul_consumer_lag_messages", {"stage": "sink", "topic": EVENTS.name})

    sink = SinkThread(
        settings,
        group,
        metrics,
        batch_max=100,
        batch_wait_s=0.1,
        backoff=Backoff(initial=0.2, maximum=1.0),
        assign=assign,
    )
    try:
        publish(kafka_bootstrap, topic, [(e.subject, e.to_json()) for e in first])
        wait_until(lambda: stored() == len(first), what="the first half stored")
        wait_until(lambda: committed(kafka_bootstrap, group, topic) == len(first), what="the first commit")
        engine.dispose()

        server.stop()
        # the lag gauge counts every message not stored, refreshed while the database is away
        early, late = second[: len(second) // 3], second[len(second) // 3 :]
        publish(kafka_bootstrap, topic, [(e.subject, e.to_json()) for e in early])
        wait_until(lambda: registry.get_sample_value("tawasul_database_up") == 0.0, what="db_up 0")
        wait_until(lambda: lag() == len(early), what=f"the lag gauge at {len(early)}")
        publish(kafka_bootstrap, topic, [(e.subject, e.to_json()) for e in late])
        wait_until(lambda: lag() == len(second), what=f"the lag gauge grown to {len(second)}")
        wait_until(
            lambda: (registry.get_sample_value("tawasul_database_errors_total", {"kind": "unavailable"}) or 0) >= 3,
            what="retries",
        )
        assert committed(kafka_bootstrap, group, topic) == len(first)  # nothing unstored was committed
        assert sink.thread.is_alive() and sink.handled(topic) == len(first)

        server.start()
        wait_until(lambda: sink.handled(topic) == len(events), what="the catch-up")
        assert registry.get_sample_value("tawasul_database_up") == 1.0
        wait_until(lambda: lag() == 0, what="the lag gauge back at 0")
        assert committed(kafka_bootstrap, group, topic) == len(events)
        with engine.connect() as connection:
            ids = connection.execute(select(StoredEvent.id)).scalars().all()
            calls = connection.execute(select(func.count()).select_from(Call)).scalar_one()
        assert sorted(ids) == sorted(e.id for e in events)  # every event, exactly once
        assert calls == len({e.subject for e in events if e.type.startswith("call.")})
    finally:
        summary = sink.close()
        engine.dispose()
    assert summary.records[topic] == len(events) and summary.skipped == 0

"""The KPI snapshot publisher on the real broker: a figure Kafka refused is not lost."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaError
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from schemas import decode_event
from stream_processors.kpi_agent import SnapshotPublisher
from stream_processors.snapshots import SnapshotPacer
from tawasul.infra.settings import Settings
from tests.support.kafka import read_all, unique
from tests.unit.test_kpi_state import CALLS, book_of


def _set_max_message_bytes(bootstrap: str, topic: str, limit: int, *, create: bool = False) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        if create:
            admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": str(limit)})])
        else:
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(limit)})]
            )
    finally:
        admin.close()


def test_figures_kafka_refused_are_all_sent_again(kafka_bootstrap: str) -> None:
    topic = unique("kpis-refused")
    _set_max_message_bytes(kafka_bootstrap, topic, 200, create=True)
    book = book_of(CALLS, "10:05:00")
    expected = {
        row.key
        for row in SnapshotPacer(min_interval_s=0.0, slow_interval_s=0.0).changed_rows(book_of(CALLS, "10:05:00"))
    }  # a book of its own: taking rows marks them
    assert len(expected) > 20
    publisher = SnapshotPublisher(
        Settings(kafka=kafka_bootstrap), topic, SnapshotPacer(min_interval_s=0.0, slow_interval_s=0.0)
    )

    async def scenario() -> tuple[int, int, int]:
        try:
            handed = await publisher.publish_due(book)  # every batch is over the topic's limit
            with pytest.raises(KafkaError):
                await publisher.publish_due(book, force=True)  # waits for Kafka's answer: refused
            _set_max_message_bytes(kafka_bootstrap, topic, 1_048_588)
            sent = await publisher.publish_due(book)  # no figure changed, yet all go out again
            return handed, sent, await publisher.publish_due(book, force=True)
        finally:
            await publisher.stop()

    handed, sent, after = asyncio.run(scenario())
    assert (handed, sent, after) == (len(expected), len(expected), 0)
    stored = {key.decode(): decode_event(value) for _t, _p, key, value in read_all(kafka_bootstrap, [topic])}
    assert set(stored) == expected
    assert all(event.type == "kpi.snapshot" and event.subject == key for key, event in stored.items())

"""Helpers for tests on the real broker: unique names, topic creation, reading a topic back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition

from tawasul.infra.topics import TopicSpec, ensure_topics


def unique(name: str) -> str:
    """A name no other test (or earlier run) uses."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int = 6, config: dict[str, str] | None = None) -> str:
    ensure_topics(bootstrap, specs=(TopicSpec(name, partitions, dict(config or {})),))
    return name


def read_all(
    bootstrap: str, topics: Iterable[str], timeout_s: float = 10.0
) -> list[tuple[str, int, bytes | None, bytes]]:
    """Every record of the topics from the start to their current end: (topic, partition, key, value)."""
    import time

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    deadline = time.monotonic() + timeout_s
    try:
        names = list(topics)
        partitions = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        while {tp.topic for tp in partitions} != set(names):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"topics missing from the metadata: {sorted(set(names) - {tp.topic for tp in partitions})}"
                )
            time.sleep(0.2)
            partitions = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[tuple[str, int, bytes | None, bytes]] = []
        while time.monotonic() < deadline and any(consumer.position(tp) < end[tp] for tp in partitions):
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records.extend((tp.topic, tp.partition, r.key, r.value) for r in batch)
        return records
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """The consumer group's committed offset per partition of `topic` (kafka-python 3 admin API)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tawasul-test-offsets")
    try:
        by_group = admin.list_group_offsets(group_id)
    finally:
        admin.close()
    offsets = by_group.get(group_id, {})
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}

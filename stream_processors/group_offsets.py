"""A consumer group's committed offsets, read with an admin client (the SLA agent's positions)."""

from __future__ import annotations

from tawasul.infra.kafka_security import kafka_python_options
from tawasul.infra.settings import Settings


def committed_offset(settings: Settings, group_id: str, topic: str, partition: int) -> int:
    """The group's committed offset of one partition (0 when none)."""
    return committed_offsets(settings, group_id, topic, [partition])[partition]


def committed_offsets(settings: Settings, group_id: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The group's committed offsets of some partitions of a topic (0 when none)."""
    from kafka import KafkaAdminClient, TopicPartition

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka, client_id="tawasul-sla-position", **kafka_python_options()
    )
    try:
        tps = [TopicPartition(topic, partition) for partition in partitions]
        found = admin.list_group_offsets({group_id: tps}).get(group_id, {})
        out: dict[int, int] = {}
        for tp in tps:
            offset = found.get(tp)
            out[tp.partition] = max(offset.offset, 0) if offset is not None else 0
        return out
    finally:
        admin.close()

"""Kafka's default key partitioning (murmur2, as the Java client), cheaper per message.

kafka-python's `DefaultPartitioner` hashes the key in pure Python and rebuilds the topic's
partition lists for every message: about 10 us a send. Tickets, calls and visits send many
messages under one key, so `KeyHashes` remembers the hash of recent keys (`KeyPartitioner`
for kafka-python, the replay engine's record batches for aiokafka). It picks the same
partition as the default one, so keys stay co-partitioned with every other producer.
"""

from __future__ import annotations

import functools
from typing import Any

from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2

CACHED_KEYS = 1 << 17
"""Recent keys whose hash is remembered (a few MiB)."""


def key_hash(key: bytes) -> int:
    """The non-negative murmur2 hash Kafka's default partitioner takes modulo the partition count."""
    return int(murmur2(key)) & 0x7FFFFFFF


class KeyHashes:
    """The partition of a key as Kafka's default partitioner picks it, with the hashes of the
    last `cache_size` keys remembered (for producers that choose partitions themselves)."""

    def __init__(self, cache_size: int = CACHED_KEYS) -> None:
        self._hash = functools.lru_cache(maxsize=cache_size)(key_hash)

    def partition(self, key: bytes, count: int) -> int:
        """The partition of `key` among partitions 0 .. `count` - 1."""
        return int(self._hash(key)) % count


class KeyPartitioner(DefaultPartitioner):  # type: ignore[misc]  # kafka-python has no type hints
    """kafka-python's `DefaultPartitioner` on `KeyHashes`."""

    def __init__(self, cache_size: int = CACHED_KEYS) -> None:
        self._hashes = KeyHashes(cache_size)

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if serialized_key is None:  # no key: a random available partition, as by default
            return int(super().partition(topic, key, serialized_key, value, serialized_value, cluster))
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        index = self._hashes.partition(bytes(serialized_key), len(partitions))
        return index if index in partitions else sorted(partitions)[index]

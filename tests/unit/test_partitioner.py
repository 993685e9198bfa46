from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from kafka.partitioner import DefaultPartitioner

from tawasul.infra.partitioner import KeyHashes, KeyPartitioner


def _cluster(partitions: dict[str, set[int]]) -> SimpleNamespace:
    return SimpleNamespace(
        topics=lambda: set(partitions),
        partitions_for_topic=lambda topic: partitions.get(topic),
        available_partitions_for_topic=lambda topic: partitions.get(topic, set()),
    )


@pytest.mark.parametrize("count", [1, 3, 6, 12, 50])
def test_every_key_lands_where_the_default_partitioner_puts_it(count: int) -> None:
    cluster = _cluster({"t": set(range(count))})
    rng = random.Random(count)
    keys = [f"T-{rng.randrange(10**9)}".encode() for _ in range(3000)] + ["طلب-١".encode(), b"", b"\x00\xff"]
    cached, hashes, default = KeyPartitioner(cache_size=100), KeyHashes(cache_size=100), DefaultPartitioner()
    for key in keys * 2:  # the second pass reads the remembered hashes (and evicted ones)
        expected = default.partition("t", key, key, None, None, cluster)
        assert cached.partition("t", key, key, None, None, cluster) == expected
        assert hashes.partition(key, count) == expected


def test_a_keyless_message_goes_to_an_available_partition() -> None:
    cluster = _cluster({"t": {0, 1, 2}})
    assert {KeyPartitioner().partition("t", None, None, b"v", b"v", cluster) for _ in range(50)} <= {0, 1, 2}


def test_an_unknown_topic_is_named() -> None:
    with pytest.raises(ValueError, match="missing"):
        KeyPartitioner().partition("missing", b"k", b"k", None, None, _cluster({}))

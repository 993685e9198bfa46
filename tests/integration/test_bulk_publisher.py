"""`BulkPublisher` on the real broker: record batches land complete and in order per key,
every batch is confirmed before it counts, and a refused batch is reported, never dropped."""

from __future__ import annotations

from collections import defaultdict

import pytest

from producers.bulk_publisher import BulkPublisher
from producers.intake import Accepted, Rejected, accept_line
from producers.publisher import PublishError, channel_of
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS, ensure_topics
from tests.integration.test_publish import read_dead_letters, simulated_lines
from tests.support.kafka import create_topic, read_all, unique


def _accepted(lines: list[bytes]) -> list[Accepted]:
    outcomes = [accept_line(raw, f"mem:{number}", None) for number, raw in enumerate(lines)]
    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def test_batches_keep_each_key_in_order_and_count_on_confirmation(kafka_bootstrap: str) -> None:
    prefix = unique("t-bulk-")
    ensure_topics(kafka_bootstrap, prefix, (EVENTS, DEAD_LETTER))
    metrics = Metrics()
    good = _accepted(simulated_lines(600))
    settings = Settings(kafka=kafka_bootstrap).with_prefix(prefix)
    per_batch = 4096 // min(len(outcome.value) for outcome in good) + 1
    with BulkPublisher(settings, metrics=metrics, window=2, batch_bytes=4096) as publisher:
        for number, outcome in enumerate(good):
            publisher.publish_validated(
                outcome.key, outcome.value, channel=channel_of(outcome.event), event_type=outcome.event.type
            )
            assert publisher.pending <= (2 + EVENTS.partitions) * per_batch  # window + open batches
            if number == 300:
                bad = accept_line(b"nope", "mem:x", None)
                assert isinstance(bad, Rejected)
                publisher.reject(bad, source_kind="http")
        publisher.flush()
        assert publisher.pending == 0
        assert publisher.confirmed_events == len(good) and publisher.confirmed_dead_letters == 1

    stored: dict[bytes, list[bytes]] = defaultdict(list)
    for _, _, key, value in read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"], timeout_s=30):
        assert key is not None
        stored[key].append(value)
    expected: dict[bytes, list[bytes]] = defaultdict(list)
    for outcome in good:
        expected[outcome.key].append(outcome.value)
    assert stored == expected  # nothing lost or doubled; each key in the order published
    sample = metrics.registry.get_sample_value
    calls = sample("tawasul_events_accepted_total", {"channel": "call", "type": "call.offered"})
    assert calls == sum(1 for outcome in good if outcome.event.type == "call.offered") > 0
    assert sample("tawasul_events_rejected_total", {"source_kind": "http", "reason": "not_json"}) == 1
    assert sample("tawasul_dead_letters_total", {"source_kind": "http"}) == 1
    letters = read_dead_letters(kafka_bootstrap, f"{prefix}{DEAD_LETTER.name}")
    assert [letter.origin for letter, _ in letters] == ["mem:x"]


def test_a_refused_batch_is_raised_not_dropped(kafka_bootstrap: str) -> None:
    prefix = unique("t-bulk-")
    create_topic(kafka_bootstrap, f"{prefix}{EVENTS.name}", 1, {"max.message.bytes": "3000"})
    ensure_topics(kafka_bootstrap, prefix, (DEAD_LETTER,))
    small, *rest = _accepted(simulated_lines(40))
    publisher = BulkPublisher(Settings(kafka=kafka_bootstrap).with_prefix(prefix), batch_bytes=64 * 1024)
    publisher.publish_validated(small.key, small.value, channel="call", event_type=small.event.type)
    publisher.flush(timeout_s=30)
    for outcome in rest:  # one batch of about 12 kB: over the topic's limit
        publisher.publish_validated(outcome.key, outcome.value, channel="call", event_type=outcome.event.type)
    with pytest.raises(PublishError, match=rf"^{len(rest)} send\(s\) to Kafka failed after retries; first: "):
        publisher.flush(timeout_s=60)
    assert publisher.pending == 0 and publisher.confirmed_events == 1
    publisher.close()
    assert [value for *_, value in read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"])] == [small.value]
    with pytest.raises(PublishError, match="closed"):
        publisher.publish_validated(small.key, small.value, channel="call", event_type=small.event.type)


def test_a_missing_topic_is_named(kafka_bootstrap: str) -> None:
    settings = Settings(kafka=kafka_bootstrap).with_prefix(unique("t-missing-"))
    with pytest.raises(PublishError, match=r"topic t-missing-.*events does not exist"):
        BulkPublisher(settings, connect_timeout_s=3)

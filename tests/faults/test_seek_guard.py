"""The seek at the end of a faust recovery, on the real broker: a partition the group never
committed goes back to its beginning (`stream_processors.seek_guard`, installed by
`build_app`), so records fetched and dropped while the recovery ended are read again.

faust-streaming 0.15.3 asks aiokafka 0.14.0 to seek to the committed offsets, and aiokafka
leaves a partition without one where it is: the records read before the seek stay behind. The
test without the guard shows that (and fails when a release changes it, which says whether
the guard can go). docs/reliability.md tells how that lost outcomes after worker restarts.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import faust
import pytest
from kafka import KafkaProducer

from stream_processors import seek_guard
from stream_processors.runner import AppThread
from tests.faults.conftest import raw_app
from tests.support.kafka import committed_offsets, create_topic

pytestmark = pytest.mark.kafka
PARTITIONS, PER_PARTITION = 3, 10


def _app(bootstrap: str, topic: str, group: str, datadir: Path, seen: list[tuple[int, int]]) -> faust.App:
    app = raw_app(bootstrap, group, datadir, commit_interval_s=3600.0)  # nothing committed while it runs
    lock = threading.Lock()

    async def agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            with lock:
                seen.append((event.message.partition, event.message.offset))

    app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"), name="reader")(agent)
    return app


@pytest.mark.parametrize("guarded", [True, False])
def test_a_partition_never_committed_is_read_again_from_its_beginning(
    kafka_bootstrap: str, tmp_path: Path, guarded: bool
) -> None:
    topic = create_topic(kafka_bootstrap, f"seek-guard-{uuid.uuid4().hex[:8]}", partitions=PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for n in range(PARTITIONS * PER_PARTITION):
        producer.send(topic, key=b"k", value=str(n).encode(), partition=n % PARTITIONS)
    producer.flush()
    producer.close()
    group = f"seek-guard-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[int, int]] = []
    every = {(p, o) for p in range(PARTITIONS) for o in range(PER_PARTITION)}
    if guarded:
        seek_guard.install()
    else:
        seek_guard.uninstall()
    app = _app(kafka_bootstrap, topic, group, tmp_path, seen)
    runner = AppThread(app).start()
    try:
        runner.wait_until(lambda: set(seen) == every, timeout_s=90)
        assert committed_offsets(kafka_bootstrap, group, topic) == {}
        runner.call(app.consumer.perform_seek(), timeout_s=60)
        if guarded:
            runner.wait_until(lambda: len(seen) >= 2 * len(every), timeout_s=60)
            assert Counter(seen) == dict.fromkeys(every, 2), "every record read once more, none skipped"
        else:
            time.sleep(3.0)
            assert len(seen) == len(every), "faust 0.15.3 / aiokafka 0.14.0 now seek an uncommitted partition"
    finally:
        runner.stop()
        seek_guard.install()

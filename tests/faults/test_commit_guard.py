"""faust-streaming #606 on the real broker: one message at the head of a partition is held
unacknowledged while the nine after it are acknowledged. With Tawasul's guard
(`stream_processors.commit_guard`, installed by `build_app`) the committed offset never passes
the held message, and reaches the end once it is acknowledged. Without it faust 0.15.3 commits
past the held message - the test of that case fails once a faust release fixes the bug, which
says the guard can go."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import faust
import pytest
from kafka import KafkaProducer

from stream_processors import commit_guard
from stream_processors.runner import AppThread
from tests.faults.conftest import raw_app
from tests.support.kafka import committed_offsets, create_topic

pytestmark = pytest.mark.kafka
MESSAGES = 10


def _app(
    bootstrap: str, topic: str, group: str, datadir: Path, release: threading.Event, acked: list[int]
) -> faust.App:
    app = raw_app(bootstrap, group, datadir, commit_interval_s=0.1)
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")

    async def agent(stream: faust.StreamT) -> None:
        manual = stream.noack()
        held = None
        async for event in manual.events():
            if event.message.offset == 0:
                held = event  # in flight: its outputs not confirmed yet
            else:
                await manual.ack(event)
                acked.append(event.message.offset)
            if held is not None and len(acked) == MESSAGES - 1:
                while not release.is_set():
                    await asyncio.sleep(0.05)
                await manual.ack(held)
                acked.append(0)
                held = None

    app.agent(source, name="held-head", concurrency=1)(agent)
    return app


@pytest.mark.parametrize("guarded", [True, False])
def test_the_committed_offset_never_passes_a_held_message(kafka_bootstrap: str, tmp_path: Path, guarded: bool) -> None:
    topic = create_topic(kafka_bootstrap, f"held-head-{uuid.uuid4().hex[:8]}", partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for n in range(MESSAGES):
        producer.send(topic, key=b"k", value=str(n).encode())
    producer.flush()
    producer.close()
    group = f"held-head-{uuid.uuid4().hex[:8]}"
    release, acked = threading.Event(), []
    if guarded:
        commit_guard.install()
    else:
        commit_guard.uninstall()
    runner = AppThread(_app(kafka_bootstrap, topic, group, tmp_path, release, acked)).start()
    try:
        runner.wait_until(lambda: len(acked) == MESSAGES - 1, timeout_s=90)
        seen: list[int] = []
        deadline = time.monotonic() + 3.0  # thirty commit intervals while offset 0 is held
        while time.monotonic() < deadline:
            seen.append(committed_offsets(kafka_bootstrap, group, topic).get(0, -1))
            time.sleep(0.2)
        if guarded:
            assert max(seen) <= 0, f"committed past the held offset 0: {seen}"
            release.set()
            runner.wait_until(lambda: committed_offsets(kafka_bootstrap, group, topic).get(0) == MESSAGES, timeout_s=30)
        else:
            assert max(seen) == MESSAGES, f"faust 0.15.3 no longer commits past a held message: {seen}"
            release.set()
    finally:
        release.set()
        runner.stop()
        commit_guard.install()

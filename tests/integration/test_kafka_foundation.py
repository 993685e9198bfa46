"""The real broker carries our traffic: kafka-python and faust, 10,000 events, per-key order kept."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from kafka import KafkaProducer

from tests.support.kafka import committed_offsets, create_topic, read_all, unique

EVENTS = 10_000
KEYS = 97


def _produce(bootstrap: str, topic: str) -> dict[str, list[int]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    sent: dict[str, list[int]] = defaultdict(list)
    futures = []
    for sequence in range(EVENTS):
        key = f"subject-{sequence % KEYS}"
        futures.append(producer.send(topic, key=key.encode(), value=str(sequence).encode()))
        sent[key].append(sequence)
    producer.flush()
    assert all(future.succeeded() for future in futures)
    producer.close()
    return sent


def test_kafka_python_round_trip_keeps_per_key_order(kafka_bootstrap: str) -> None:
    topic = create_topic(kafka_bootstrap, unique("foundation-kp"), partitions=6)
    sent = _produce(kafka_bootstrap, topic)
    records = read_all(kafka_bootstrap, [topic], timeout_s=60)
    assert len(records) == EVENTS
    received: dict[str, list[int]] = defaultdict(list)
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    for _, partition, key, value in records:
        assert key is not None
        received[key.decode()].append(int(value))
        partitions_of_key[key.decode()].add(partition)
    assert received == sent
    assert all(len(parts) == 1 for parts in partitions_of_key.values())
    assert len({p for parts in partitions_of_key.values() for p in parts}) == 6


def test_a_faust_agent_consumes_everything_in_per_key_order(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = create_topic(kafka_bootstrap, unique("foundation-faust"), partitions=6)
    sent = _produce(kafka_bootstrap, topic)
    out_file = tmp_path / "echo.tsv"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.faust_echo",
            kafka_bootstrap,
            topic,
            unique("faust-echo"),
            str(out_file),
            str(EVENTS),
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    lines = out_file.read_text(encoding="utf-8").splitlines() if out_file.exists() else []
    assert len(lines) == EVENTS, output[-3000:]
    received: dict[str, list[int]] = defaultdict(list)
    for line in lines:
        _, key, value = line.split("\t")
        received[key].append(int(value))
    assert received == sent


def test_a_faust_app_joins_its_group_and_commits(kafka_bootstrap: str, tmp_path: Path) -> None:
    """After the faust app stopped, its consumer group has committed offsets for every partition."""
    topic = create_topic(kafka_bootstrap, unique("foundation-group"), partitions=6)
    _produce(kafka_bootstrap, topic)
    app_id = unique("faust-group")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.faust_echo",
            kafka_bootstrap,
            topic,
            app_id,
            str(tmp_path / "out.tsv"),
            str(EVENTS),
        ],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=180,
        check=False,
    )
    deadline = time.monotonic() + 20
    committed: dict[int, int] = {}
    while time.monotonic() < deadline:
        committed = committed_offsets(kafka_bootstrap, app_id, topic)
        if sum(committed.values()) == EVENTS:
            break
        time.sleep(0.5)
    assert sorted(committed) == list(range(6))
    assert sum(committed.values()) == EVENTS

"""`tawasul publish` and the publisher on the real broker: what lands in the events and dead-letter topics."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, TopicPartition

from producers.intake import accept_line
from producers.publish_cmd import publish
from producers.publisher import EventPublisher, PublishError
from producers.simulator import Params, iter_events, parse_when
from schemas import MAX_EVENT_BYTES, decode_event
from tawasul.infra.deadletter import DeadLetter, decode_dead_letter
from tawasul.infra.metrics import Metrics
from tawasul.infra.settings import Settings
from tawasul.infra.topics import DEAD_LETTER, EVENTS, ensure_topics
from tests.support.kafka import create_topic, read_all, unique

REPO = Path(__file__).resolve().parents[2]


def simulated_lines(count: int) -> list[bytes]:
    """`count` realistic events as compact JSON lines (fresh ids and subjects per call)."""
    params = Params(parse_when("2025-05-13"), parse_when("2025-05-15"), seed=3, scale=0.12, tag=uuid.uuid4().hex[:8])
    lines = [json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode() for e in iter_events(params)]
    assert len(lines) >= count
    return lines[:count]


def bad_event(**changes: Any) -> bytes:
    base: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"bad-{uuid.uuid4().hex}",
        "source": "/channels/crm",
        "type": "ticket.acknowledged",
        "time": "2025-05-13T08:10:00+04:00",
        "subject": "CRM-BAD",
        "data": {},
    }
    base.update(changes)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


BAD_LINES: list[tuple[bytes, str]] = [
    (b"this is not json", "event: not valid JSON"),
    (b"[1, 2, 3]", "event: must be a JSON object, not an array"),
    (bad_event(id=None, time=None), "id: required; time: required"),
    (bad_event(specversion="0.3"), "specversion: must be 1.0"),
    (bad_event(type="ticket.teleported"), "type: unknown event type 'ticket.teleported'"),
    (
        bad_event(
            type="sla.breached",
            source="/tawasul/sla",
            data={
                "ticket_id": "CRM-BAD",
                "target": "resolution",
                "policy": "crm-standard",
                "deadline": "2025-05-13T08:00:00Z",
                "channel": "crm",
                "kind": "request",
                "category": "c",
                "priority": "low",
            },
        ),
        "type: 'sla.breached' is produced by Tawasul's stream processors, not accepted as input",
    ),
    (bad_event(time="2025-05-13T08:10:00"), "time: has no UTC offset"),
    (
        bad_event(type="ticket.opened", data={"channel": "fax", "kind": "request", "category": "c", "priority": "low"}),
        "data.channel: must be one of",
    ),
    (bad_event(data={"note": "x" * (MAX_EVENT_BYTES + 100)}), "event: too large:"),
    (b'{"specversion":"1.0","id":"\xff\xfe"}', "event: not valid UTF-8"),
    (
        bad_event(type="call.abandoned", subject="pbx-9", data={"queue": "q", "caller_number": "+971501234567"}),
        "data.caller_number: a raw phone number is not accepted",
    ),
]


def env(bootstrap: str, prefix: str) -> dict[str, str | None]:
    return {"TAWASUL_KAFKA": bootstrap, "TAWASUL_TOPIC_PREFIX": prefix, "TAWASUL_PSEUDONYM_KEY": None}


def read_dead_letters(bootstrap: str, topic: str) -> list[tuple[DeadLetter, dict[str, bytes]]]:
    """Every dead letter of `topic` with its headers."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        out: list[tuple[DeadLetter, dict[str, bytes]]] = []
        deadline = time.monotonic() + 15
        while consumer.position(partition) < end and time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(partition, []):
                out.append((decode_dead_letter(record.value), dict(record.headers)))
        return out
    finally:
        consumer.close()


def events_by_key(bootstrap: str, topic: str) -> dict[bytes, list[bytes]]:
    grouped: dict[bytes, list[bytes]] = defaultdict(list)
    for _, _, key, value in read_all(bootstrap, [topic], timeout_s=30):
        assert key is not None
        grouped[key].append(value)
    return grouped


@pytest.mark.parametrize("workers", [0, 1])
def test_publish_mixed_file(kafka_bootstrap: str, tmp_path: Path, workers: int) -> None:
    prefix = unique("t-pub-")
    good = simulated_lines(144)  # room for every bad line: one after each 12th good one
    lines: list[bytes] = []
    expected_bad: dict[int, str] = {}
    for index, raw in enumerate(good):
        lines.append(raw)
        if index % 12 == 5 and index // 12 < len(BAD_LINES):
            bad, reason = BAD_LINES[index // 12]
            lines.append(bad)
            expected_bad[len(lines)] = reason
        if index % 40 == 7:
            lines.append(b"   ")  # blank lines are skipped silently
            lines.append(b"")
    assert len(expected_bad) == len(BAD_LINES)
    lines.append(good[0][:40])  # the last line is cut mid-JSON, no newline
    expected_bad[len(lines)] = "event: not valid JSON"
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines))

    result = CliRunner().invoke(
        publish, [str(path), "--no-progress", "--workers", str(workers)], env=env(kafka_bootstrap, prefix)
    )

    assert result.exit_code == 1, result.output
    printed = result.stdout.splitlines()
    assert [int(p.split(":")[0].removeprefix("line ")) for p in printed] == sorted(expected_bad)
    for text, (line_no, reason) in zip(printed, sorted(expected_bad.items()), strict=True):
        assert text.startswith(f"line {line_no}: {reason}")
    assert f"published {len(good)}, rejected {len(expected_bad)}," in result.stderr

    grouped = events_by_key(kafka_bootstrap, f"{prefix}{EVENTS.name}")
    assert sum(len(values) for values in grouped.values()) == len(good)
    expected: dict[bytes, list[bytes]] = defaultdict(list)
    for raw in good:
        expected[decode_event(raw).subject.encode()].append(raw)
    assert grouped == expected  # keys = subjects, values as written, per-key order = file order

    letters = read_dead_letters(kafka_bootstrap, f"{prefix}{DEAD_LETTER.name}")
    assert [letter.origin for letter, _ in letters] == [f"events.jsonl:{n}" for n in sorted(expected_bad)]
    for (letter, headers), (line_no, reason) in zip(letters, sorted(expected_bad.items()), strict=True):
        assert letter.reason.startswith(reason)
        assert headers == {"reason": letter.reason.encode(), "origin": f"events.jsonl:{line_no}".encode()}
        original = lines[line_no - 1]
        if b"caller_number" in original:
            assert b"+971501234567" not in letter.original and b"[redacted]" in letter.original
        elif len(original) > MAX_EVENT_BYTES:
            assert original.startswith(letter.original) and len(letter.original) < len(original)
        else:
            assert letter.original == original.strip()


def test_publish_all_valid_with_pseudonymisation(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique("t-pub-")
    good = simulated_lines(30)
    raw_call = bad_event(type="call.offered", subject="pbx-7", data={"queue": "q", "msisdn": "0501234567"})
    path = tmp_path / "ok.jsonl"
    path.write_bytes(b"\r\n".join([*good, raw_call]))  # CRLF, last line complete without newline
    environment = {**env(kafka_bootstrap, prefix), "TAWASUL_PSEUDONYM_KEY": "integration-test-key-0123456789"}

    result = CliRunner().invoke(publish, [str(path)], env=environment)

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    values = [value for _, _, _, value in read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"])]
    assert len(values) == len(good) + 1
    assert sorted(values) == sorted([*good, *[v for v in values if b"pbx-7" in v]])
    call = next(json.loads(v) for v in values if b"pbx-7" in v)
    assert set(call["data"]) == {"queue", "caller_ref"} and "0501234567" not in json.dumps(call)
    assert read_all(kafka_bootstrap, [f"{prefix}{DEAD_LETTER.name}"]) == []


def test_publish_empty_file(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique("t-pub-")
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    result = CliRunner().invoke(publish, [str(path)], env=env(kafka_bootstrap, prefix))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "published 0, rejected 0," in result.stderr
    assert read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}", f"{prefix}{DEAD_LETTER.name}"]) == []


def publish_argv() -> list[str]:
    """`tawasul publish` once the command is registered, else the command object itself."""
    from tawasul.app.cli import COMMANDS

    if "publish" in COMMANDS:
        return [sys.executable, "-m", "tawasul", "publish"]
    return [sys.executable, "-c", "from producers.publish_cmd import publish; publish()"]


def test_publish_subprocess_file_and_stdin(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique("t-pub-")
    good = simulated_lines(20)
    path = tmp_path / "sub.jsonl"
    path.write_bytes(b"\n".join(good) + b"\n")
    environment = {**os.environ, "TAWASUL_KAFKA": kafka_bootstrap, "TAWASUL_TOPIC_PREFIX": prefix}
    environment.pop("TAWASUL_PSEUDONYM_KEY", None)

    ok = subprocess.run([*publish_argv(), str(path)], env=environment, capture_output=True, timeout=120, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == b"" and b"published 20, rejected 0," in ok.stderr

    piped = b"\n".join([good[0], b"{broken", bad_event(time="noon")]) + b"\n"
    bad = subprocess.run(
        [*publish_argv(), "-"], input=piped, env=environment, capture_output=True, timeout=120, cwd=REPO
    )
    assert bad.returncode == 1, bad.stderr
    assert bad.stdout.decode().splitlines()[0].startswith("line 2: event: not valid JSON")
    assert bad.stdout.decode().splitlines()[1].startswith("line 3: time: ")
    letters = read_dead_letters(kafka_bootstrap, f"{prefix}{DEAD_LETTER.name}")
    assert [letter.origin for letter, _ in letters] == ["stdin:2", "stdin:3"]
    assert len(read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"])) == 21  # good[0] a second time


def test_sigterm_flushes_and_exits(kafka_bootstrap: str) -> None:
    prefix = unique("t-pub-")
    good = simulated_lines(50)
    environment = {**os.environ, "TAWASUL_KAFKA": kafka_bootstrap, "TAWASUL_TOPIC_PREFIX": prefix}
    process = subprocess.Popen(
        [*publish_argv(), "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=REPO,
    )
    assert process.stdin is not None
    process.stdin.write(b"\n".join(good) + b"\n")
    process.stdin.flush()
    topic = f"{prefix}{EVENTS.name}"
    deadline = time.monotonic() + 60
    seen = 0
    while time.monotonic() < deadline and seen < len(good):
        time.sleep(0.5)
        try:
            seen = len(read_all(kafka_bootstrap, [topic], timeout_s=5))
        except ValueError:  # the command has not created the topic yet
            seen = 0
    assert seen == len(good)
    process.send_signal(signal.SIGTERM)  # while it waits for more input on the open pipe
    process.wait(timeout=60)
    process.stdin.close()
    assert process.stderr is not None
    err = process.stderr.read()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert b"published 50, rejected 0," in err and b"(interrupted)" in err
    assert len(read_all(kafka_bootstrap, [topic])) == len(good)


def test_sigterm_during_a_batched_file_publish_counts_what_kafka_holds(kafka_bootstrap: str, tmp_path: Path) -> None:
    """With validation workers the file goes out in record batches (`BulkPublisher`): stopped
    midway, it flushes, and the count it prints is exactly what the topic holds."""
    prefix = unique("t-pub-")
    lines = simulated_lines(300)
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(lines * 1000) + b"\n")  # 300,000 events: several seconds of work
    environment = {**os.environ, "TAWASUL_KAFKA": kafka_bootstrap, "TAWASUL_TOPIC_PREFIX": prefix}
    process = subprocess.Popen(
        [*publish_argv(), str(path), "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=REPO,
    )
    topic = f"{prefix}{EVENTS.name}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            if read_all(kafka_bootstrap, [topic], timeout_s=5):
                break
        except ValueError:  # the command has not created the topic yet
            pass
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert b"(interrupted)" in err
    printed = re.search(rb"published ([\d,]+), rejected 0,", err)
    assert printed is not None, err
    published = int(printed.group(1).replace(b",", b""))
    assert 0 < published < len(lines) * 1000
    assert len(read_all(kafka_bootstrap, [topic], timeout_s=60)) == published


def test_publisher_window_metrics_and_raw_bytes(kafka_bootstrap: str) -> None:
    prefix = unique("t-pub-")
    ensure_topics(kafka_bootstrap, prefix, (EVENTS, DEAD_LETTER))
    metrics = Metrics()
    good = simulated_lines(300)
    with EventPublisher(Settings(kafka=kafka_bootstrap).with_prefix(prefix), metrics=metrics, window=10) as publisher:
        for number, raw in enumerate(good):
            outcome = accept_line(raw, f"mem:{number}", None)
            publisher.route(outcome)
            assert publisher.pending <= 11
        publisher.reject(accept_line(b"nope", "mem:x", None), source_kind="http")  # type: ignore[arg-type]
        publisher.flush()
        assert publisher.pending == 0
        assert publisher.confirmed_events == len(good) and publisher.confirmed_dead_letters == 1
    accepted = sum(
        sample.value for sample in metrics.events_accepted.collect()[0].samples if sample.name.endswith("_total")
    )
    assert accepted == len(good)
    sample = metrics.registry.get_sample_value
    assert sample("tawasul_events_rejected_total", {"source_kind": "http", "reason": "not_json"}) == 1
    assert sample("tawasul_dead_letters_total", {"source_kind": "http"}) == 1
    calls = sample("tawasul_events_accepted_total", {"channel": "call", "type": "call.offered"})
    assert calls == sum(1 for raw in good if b'"call.offered"' in raw) > 0
    stored = sorted(value for _, _, _, value in read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"]))
    assert stored == sorted(good)


def test_failed_delivery_is_raised_not_dropped(kafka_bootstrap: str) -> None:
    prefix = unique("t-pub-")
    create_topic(kafka_bootstrap, f"{prefix}{EVENTS.name}", 1, {"max.message.bytes": "2000"})
    ensure_topics(kafka_bootstrap, prefix, (DEAD_LETTER,))
    publisher = EventPublisher(Settings(kafka=kafka_bootstrap).with_prefix(prefix))
    event = decode_event(simulated_lines(1)[0])
    publisher.publish(event)
    publisher.flush(timeout_s=30)
    too_big = event.to_json()[:-1] + b',"x":"' + b"y" * 5000 + b'"}'
    publisher.publish(event, raw=too_big)  # the broker refuses it (topic limit 2000 bytes)
    with pytest.raises(PublishError, match=r"^1 send\(s\) to Kafka failed after retries; first: MessageSizeTooLarge"):
        publisher.flush(timeout_s=30)
    assert publisher.pending == 0 and publisher.confirmed_events == 1
    publisher.close()
    assert len(read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"])) == 1
    with pytest.raises(PublishError, match="closed"):
        publisher.publish(event)


def test_send_to_a_missing_topic_is_refused(kafka_bootstrap: str) -> None:
    settings = Settings(kafka=kafka_bootstrap).with_prefix(unique("t-missing-"))
    event = decode_event(simulated_lines(1)[0])
    with EventPublisher(settings, producer_config={"max_block_ms": 1500}) as publisher:
        with pytest.raises(PublishError, match="refused"):
            publisher.publish(event)

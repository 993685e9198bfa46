"""`tawasul adapters queue-log|import-csv` on the real broker: exactly the expected events, no raw numbers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from click.testing import CliRunner

from producers.adapters_cmd import adapters
from producers.csv_import import read_csv_events
from producers.follow import load_position
from producers.intake import Accepted, accept_object
from producers.queue_log import load_options, translate_numbered
from tawasul.infra.pseudonymise import Pseudonymiser, normalise
from tawasul.infra.topics import DEAD_LETTER, EVENTS
from tests.integration.test_publish import read_dead_letters
from tests.support.kafka import read_all, unique

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
QUEUE_LOG = DATA / "queue_log" / "queue_log"
OPTIONS = DATA / "queue_log" / "options.yaml"
KEY = "adapter-integration-key-0123456789"
PS = Pseudonymiser(KEY.encode())


def env(bootstrap: str, prefix: str, key: str | None = KEY) -> dict[str, str | None]:
    return {"TAWASUL_KAFKA": bootstrap, "TAWASUL_TOPIC_PREFIX": prefix, "TAWASUL_PSEUDONYM_KEY": key}


def expected_queue_log(path: Path) -> list[Accepted]:
    options = load_options(OPTIONS, pseudonymiser=PS)
    with path.open(encoding="utf-8") as handle:
        numbered = enumerate((line.rstrip("\n") for line in handle), start=1)
        out = []
        for line_no, item in translate_numbered(numbered, options):
            if isinstance(item, dict):
                outcome = accept_object(item, f"queue_log:{line_no}", PS)
                assert isinstance(outcome, Accepted)
                out.append(outcome)
        return out


def caller_numbers() -> set[str]:
    """The digits of every caller number in the sample log (without + or leading zeros)."""
    numbers = set()
    for line in QUEUE_LOG.read_text(encoding="utf-8").splitlines():
        fields = line.split("|")
        if len(fields) > 6 and fields[4] == "ENTERQUEUE" and re.fullmatch(r"\+?\d+", fields[6]):
            numbers.add(normalise(fields[6]).lstrip("+0"))
    assert len(numbers) >= 10
    return numbers


def topic_bytes(bootstrap: str, prefix: str) -> list[bytes]:
    """Every value of the events and dead-letter topics, dead letters' originals decoded too."""
    values = [value for _, _, _, value in read_all(bootstrap, [f"{prefix}{EVENTS.name}"])]
    for letter, headers in read_dead_letters(bootstrap, f"{prefix}{DEAD_LETTER.name}"):
        values.extend([letter.original, letter.to_json(), *headers.values()])
    return values


def by_key(bootstrap: str, prefix: str) -> dict[bytes, list[bytes]]:
    grouped: dict[bytes, list[bytes]] = defaultdict(list)
    for _, _, key, value in read_all(bootstrap, [f"{prefix}{EVENTS.name}"]):
        assert key is not None
        grouped[key].append(value)
    return grouped


def grouped_expected(outcomes: list[Accepted]) -> dict[bytes, list[bytes]]:
    grouped: dict[bytes, list[bytes]] = defaultdict(list)
    for outcome in outcomes:
        grouped[outcome.key].append(outcome.value)
    return grouped


def test_queue_log_once_then_resume_from_checkpoint(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique("t-ql-")
    log = tmp_path / "queue_log"
    shutil.copy(QUEUE_LOG, log)
    checkpoint = tmp_path / "queue_log.pos"
    args = ["queue-log", str(log), "--options", str(OPTIONS), "--checkpoint", str(checkpoint)]

    first = CliRunner().invoke(adapters, args, env=env(kafka_bootstrap, prefix))

    assert first.exit_code == 1, first.output  # four malformed lines in the sample
    assert [line.split(":")[0] for line in first.stdout.splitlines()] == ["line 31", "line 52", "line 74", "line 95"]
    expected = expected_queue_log(log)
    assert len(expected) == 93
    assert by_key(kafka_bootstrap, prefix) == grouped_expected(expected)
    letters = read_dead_letters(kafka_bootstrap, f"{prefix}{DEAD_LETTER.name}")
    assert [letter.origin for letter, _ in letters] == [f"queue_log:{n}" for n in (31, 52, 74, 95)]
    assert letters[1][0].reason == "field 1 (epoch) is not a Unix time in seconds"
    assert (
        letters[1][0].original == b"2025-05-13 09:40:00|1747112400.300|customer-care-en|NONE|ENTERQUEUE||[redacted]|1"
    )
    for value in topic_bytes(kafka_bootstrap, prefix):
        assert not any(number.encode() in value for number in caller_numbers())
    position = load_position(checkpoint)
    assert position is not None and position.offset == log.stat().st_size and position.line_no == 115

    again = CliRunner().invoke(adapters, args, env=env(kafka_bootstrap, prefix))
    assert again.exit_code == 0 and "published 0, rejected 0," in again.stderr

    with log.open("a", encoding="utf-8") as handle:
        handle.write("1747118400|1747118399.300|customer-care-en|NONE|ENTERQUEUE||0509990009|1\n")
        handle.write("1747118460|1747118399.300|customer-care-en|NONE|ABANDON|1|1|60\n")
    resumed = CliRunner().invoke(adapters, args, env=env(kafka_bootstrap, prefix))
    assert resumed.exit_code == 0 and "published 2, rejected 0," in resumed.stderr
    new = by_key(kafka_bootstrap, prefix)[b"pbx-main-1747118399.300"]
    assert [json.loads(v)["type"] for v in new] == ["call.offered", "call.abandoned"]
    assert json.loads(new[0])["data"]["caller_ref"] == PS.ref("0509990009")


def adapters_argv() -> list[str]:
    from tawasul.app.cli import COMMANDS

    if "adapters" in COMMANDS:
        return [sys.executable, "-m", "tawasul", "adapters"]
    return [sys.executable, "-c", "from producers.adapters_cmd import adapters; adapters()"]


def wait_for_events(bootstrap: str, topic: str, count: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < deadline:
        try:
            seen = len(read_all(bootstrap, [topic], timeout_s=5))
        except ValueError:  # topic not created yet
            seen = 0
        if seen >= count:
            return seen
        time.sleep(0.3)
    return seen


def test_queue_log_follow_publishes_appended_lines_and_stops_on_sigterm(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique("t-ql-")
    log = tmp_path / "queue_log"
    shutil.copy(QUEUE_LOG, log)
    checkpoint = tmp_path / "follow.pos"
    environment = {**os.environ, **{k: v for k, v in env(kafka_bootstrap, prefix).items() if v is not None}}
    process = subprocess.Popen(
        [
            *adapters_argv(),
            "queue-log",
            str(log),
            "--follow",
            "--from-start",
            "--poll",
            "0.1",
            "--options",
            str(OPTIONS),
            "--checkpoint",
            str(checkpoint),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=REPO,
    )
    try:
        topic = f"{prefix}{EVENTS.name}"
        assert wait_for_events(kafka_bootstrap, topic, 93) == 93
        with log.open("a", encoding="utf-8") as handle:
            handle.write("1747118400|1747118399.400|customer-care-ar|NONE|ENTERQUEUE||0551010010|2\n")
            handle.write("1747118500|1747118399.400|customer-care-ar|PJSIP/1001|CONNECT|100|1747118499.401|3\n")
        assert wait_for_events(kafka_bootstrap, topic, 95) == 95
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            position = load_position(checkpoint)
            if position is not None and position.offset == log.stat().st_size:
                break  # committed while idle, before any signal
            time.sleep(0.2)
        assert position is not None and position.offset == log.stat().st_size and position.line_no == 117
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert b"published 95, rejected 4," in err
    for value in topic_bytes(kafka_bootstrap, prefix):
        assert b"551010010" not in value


def test_import_csv_default_columns(kafka_bootstrap: str) -> None:
    prefix = unique("t-csv-")
    path = DATA / "csv" / "events.csv"
    result = CliRunner().invoke(adapters, ["import-csv", str(path)], env=env(kafka_bootstrap, prefix, key=None))
    assert result.exit_code == 0, result.output
    expected = []
    for line_no, item in read_csv_events(path):
        assert isinstance(item, dict)
        outcome = accept_object(item, f"events.csv:{line_no}", None)
        assert isinstance(outcome, Accepted)
        expected.append(outcome)
    assert len(expected) == 8
    assert by_key(kafka_bootstrap, prefix) == grouped_expected(expected)
    comment = next(json.loads(v) for v in by_key(kafka_bootstrap, prefix)[b"pbx-main-1747109022.107"] if b"survey" in v)
    assert comment["data"]["comment"] == "الخدمة ممتازة\nشكراً لكم"


def test_import_csv_with_mapping_pseudonymises_and_drops_personal_columns(kafka_bootstrap: str) -> None:
    prefix = unique("t-csv-")
    path = DATA / "csv" / "crm_export.csv"
    mapping = DATA / "csv" / "crm_export_mapping.yaml"
    result = CliRunner().invoke(
        adapters, ["import-csv", str(path), "--mapping", str(mapping)], env=env(kafka_bootstrap, prefix)
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(value) for _, _, _, value in read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"])]
    assert sorted(e["id"] for e in events) == ["crm-ev-1", "crm-ev-2", "crm-ev-3", "crm-ev-4"]
    refs = {e["id"]: e["data"].get("customer_ref") for e in events if e["type"] == "ticket.opened"}
    assert refs == {"crm-ev-1": PS.ref("050 123 4567"), "crm-ev-3": PS.ref("00971501234567")}
    for value in topic_bytes(kafka_bootstrap, prefix):
        for personal in (b"123 4567", b"501234567", b"Fatima", b"Khalid"):
            assert personal not in value


def test_import_csv_bad_rows_go_to_the_dead_letter_topic(kafka_bootstrap: str) -> None:
    prefix = unique("t-csv-")
    path = DATA / "csv" / "bad_rows.csv"
    result = CliRunner().invoke(adapters, ["import-csv", str(path)], env=env(kafka_bootstrap, prefix, key=None))
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        "line 3: expected 7 columns, found 8",
        "line 4: data.score is not an integer",
        "line 5: required attribute(s) id empty",
        "line 8: expected 7 columns, found 3",
        "line 9: data.score: required",
    ]
    events = [json.loads(value) for _, _, _, value in read_all(kafka_bootstrap, [f"{prefix}{EVENTS.name}"])]
    assert sorted(e["id"] for e in events) == ["bad-0001", "bad-0005"]
    letters = read_dead_letters(kafka_bootstrap, f"{prefix}{DEAD_LETTER.name}")
    assert [(letter.origin, letter.reason) for letter, _ in letters] == [
        (f"bad_rows.csv:{line.split(':')[0].removeprefix('line ')}", line.split(": ", 1)[1])
        for line in result.stdout.splitlines()
    ]
    assert [letter.original for letter, _ in letters[:4]] == [b""] * 4  # CSV rows are not copied
    assert json.loads(letters[4][0].original)["id"] == "bad-0007"  # a contract rejection keeps the event


def test_missing_pseudonymisation_key_is_a_clear_error(tmp_path: Path) -> None:
    no_key = {"TAWASUL_PSEUDONYM_KEY": None, "TAWASUL_KAFKA": "localhost:1"}
    queue = CliRunner().invoke(adapters, ["queue-log", str(QUEUE_LOG), "--options", str(OPTIONS)], env=no_key)
    assert queue.exit_code == 2 and "TAWASUL_PSEUDONYM_KEY is not set" in queue.output
    csv = CliRunner().invoke(
        adapters,
        [
            "import-csv",
            str(DATA / "csv" / "crm_export.csv"),
            "--mapping",
            str(DATA / "csv" / "crm_export_mapping.yaml"),
        ],
        env=no_key,
    )
    assert csv.exit_code == 2 and "TAWASUL_PSEUDONYM_KEY" in csv.output
    short = CliRunner().invoke(adapters, ["queue-log", str(QUEUE_LOG)], env={"TAWASUL_PSEUDONYM_KEY": "short"})
    assert short.exit_code == 2 and "too short" in short.output

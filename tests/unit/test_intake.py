"""Intake: one raw input -> a valid event with the bytes to publish, or a dead letter with the reason."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from producers.intake import CATEGORIES, Accepted, Rejected, accept_line, accept_object, reject, too_large
from producers.lines import iter_lines
from schemas import MAX_EVENT_BYTES
from tawasul.infra.deadletter import MAX_ORIGINAL_BYTES, DeadLetter, DeadLetterError, decode_dead_letter
from tawasul.infra.pseudonymise import Pseudonymiser

PS = Pseudonymiser(b"unit-test-key-0123456789abcdef")


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "specversion": "1.0",
        "id": "ev-1",
        "source": "/channels/crm",
        "type": "ticket.opened",
        "time": "2025-05-13T08:10:00+04:00",
        "subject": "CRM-1",
        "data": {"channel": "crm", "kind": "request", "category": "mosque.cleaning", "priority": "high"},
    }
    base.update(changes)
    return base


def line(**changes: Any) -> bytes:
    return json.dumps(event(**changes), separators=(",", ":")).encode()


def test_a_valid_line_is_published_as_written() -> None:
    raw = (
        b'{"specversion": "1.0",  "id":"ev-1","source":"/channels/crm","type":"ticket.acknowledged",'
        b'"time":"2025-05-13T08:10:00Z","subject":"CRM-1","data":{}}'
    )
    outcome = accept_line(raw + b"\r\n", "events.jsonl:3", None)
    assert isinstance(outcome, Accepted)
    assert outcome.value == raw  # not re-serialised, line ending removed
    assert outcome.key == b"CRM-1" and outcome.origin == "events.jsonl:3"
    assert outcome.event.type == "ticket.acknowledged"


@pytest.mark.parametrize(
    ("raw", "category", "reason"),
    [
        (b"not json", "not_json", "event: not valid JSON: Expecting value at line 1 column 1"),
        (b'["a"]', "not_object", "event: must be a JSON object, not an array"),
        (b"\xff\xfe{}", "not_utf8", "event: not valid UTF-8 (byte 0)"),
        (line(type="ticket.exploded"), "unknown_type", "type: unknown event type 'ticket.exploded'"),
        (line(time="2025-05-13T08:10:00"), "invalid", "time: has no UTC offset (add Z or e.g. +04:00)"),
        (line(id=None), "invalid", "id: must be a string"),
        (
            line(data={"channel": "crm", "kind": "request", "category": "x", "priority": "asap"}),
            "invalid",
            "data.priority: must be one of low, normal, high, urgent",
        ),
        (b'{"specversion":"1.0","id":"ev-1"', "not_json", "event: not valid JSON"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason_and_the_original(raw: bytes, category: str, reason: str) -> None:
    outcome = accept_line(raw + b"\n", "events.jsonl:7", None)
    assert isinstance(outcome, Rejected)
    assert outcome.category == category and outcome.category in CATEGORIES
    assert outcome.reason.startswith(reason)
    assert outcome.origin == "events.jsonl:7"
    assert outcome.letter.original == raw


SLA_DATA = {
    "ticket_id": "CRM-1",
    "target": "resolution",
    "policy": "crm-standard",
    "deadline": "2025-05-14T08:10:00+04:00",
    "channel": "crm",
    "kind": "request",
    "category": "mosque.cleaning",
    "priority": "high",
}
KPI_DATA = {
    "figure": "satisfaction",
    "window": "day",
    "scope": {},
    "value": 0.98,
    "count": 50,
    "as_of": "2025-05-14T08:10:00+04:00",
}


@pytest.mark.parametrize("event_type", ["sla.warning", "sla.breached", "sla.met", "kpi.snapshot"])
def test_events_only_the_processors_produce_are_refused_as_input(event_type: str) -> None:
    from schemas import INPUT_EVENT_TYPES, PROCESSOR_EVENT_TYPES, new_event

    assert event_type in PROCESSOR_EVENT_TYPES and event_type not in INPUT_EVENT_TYPES
    data = KPI_DATA if event_type == "kpi.snapshot" else SLA_DATA
    raw = new_event(
        event_type,
        subject="CRM-1",
        source="/tawasul/processors",
        data=data,
        time=datetime(2025, 5, 14, 4, 10, 1, tzinfo=UTC),
    ).to_json()
    reason = (
        f"type: '{event_type}' is produced by Tawasul's stream processors, not accepted as input "
        "(input types: ticket.*, call.*, visit.*, survey.submitted)"
    )
    for outcome in (accept_line(raw, "f:2", None), accept_object(json.loads(raw), "http:r#0", None, original=raw)):
        assert isinstance(outcome, Rejected), outcome
        assert outcome.category == "not_input" and outcome.category in CATEGORIES
        assert outcome.reason == reason
        assert outcome.letter.original == raw


def test_every_contract_input_type_is_an_input_type() -> None:
    from schemas import EVENT_TYPES, INPUT_EVENT_TYPES, PROCESSOR_EVENT_TYPES

    assert INPUT_EVENT_TYPES | PROCESSOR_EVENT_TYPES == EVENT_TYPES
    assert {t.split(".")[0] for t in INPUT_EVENT_TYPES} == {"ticket", "call", "visit", "survey"}
    assert len(INPUT_EVENT_TYPES) == 9 + 4 + 4 + 1


def test_missing_attributes_are_all_named() -> None:
    outcome = accept_line(b'{"specversion":"1.0","data":{}}', "f:1", None)
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "id: required; source: required; type: required; time: required; subject: required"


def test_raw_caller_number_is_pseudonymised_when_a_key_is_given() -> None:
    raw = line(type="call.offered", subject="pbx-1", data={"queue": "customer-care-ar", "caller_number": "0501234567"})
    outcome = accept_line(raw, "f:1", PS)
    assert isinstance(outcome, Accepted)
    assert b"0501234567" not in outcome.value and b"caller_number" not in outcome.value
    assert json.loads(outcome.value)["data"] == {"queue": "customer-care-ar", "caller_ref": PS.ref("0501234567")}
    assert outcome.event.data.caller_ref == PS.ref("0501234567")  # type: ignore[attr-defined]


def test_raw_caller_number_without_a_key_is_rejected_and_redacted() -> None:
    raw = line(type="call.offered", subject="pbx-1", data={"queue": "q", "phone": "+971 50 123 4567"})
    outcome = accept_line(raw, "f:1", None)
    assert isinstance(outcome, Rejected) and outcome.category == "personal_data"
    assert outcome.reason.startswith("data.phone: a raw phone number is not accepted")
    assert b"123 4567" not in outcome.letter.original
    assert json.loads(outcome.letter.original)["data"]["phone"] == "[redacted]"


def test_an_invalid_event_with_a_number_is_redacted_too() -> None:
    raw = line(type="call.offered", time="yesterday", data={"queue": "q", "msisdn": "0559998877"})
    outcome = accept_line(raw, "f:1", PS)
    assert isinstance(outcome, Rejected) and outcome.reason.startswith("time:")
    assert b"0559998877" not in outcome.letter.original


def test_an_escaped_field_name_is_still_found() -> None:
    raw = (
        b'{"specversion":"1.0","id":"e","source":"/pbx","type":"call.offered","time":"2025-05-13T08:00:00Z",'
        b'"subject":"c-1","data":{"queue":"q","caller\\u005fnumber":"0501234567"}}'
    )
    outcome = accept_line(raw, "f:1", None)
    assert isinstance(outcome, Rejected) and outcome.category == "personal_data"
    assert b"0501234567" not in outcome.letter.original
    accepted = accept_line(raw, "f:1", PS)
    assert isinstance(accepted, Accepted) and b"0501234567" not in accepted.value


def test_oversized_input() -> None:
    big = line(
        data={"channel": "crm", "kind": "request", "category": "c", "priority": "low", "note": "x" * MAX_EVENT_BYTES}
    )
    outcome = accept_line(big, "f:9", None)
    assert isinstance(outcome, Rejected) and outcome.category == "too_large"
    assert outcome.reason == f"event: too large: {len(big)} bytes (limit {MAX_EVENT_BYTES})"
    assert outcome.letter.original == big[:MAX_ORIGINAL_BYTES]
    head = too_large(b"{" * 10, 10**9, "f:2")
    assert head.reason == f"event: too large: 1000000000 bytes (limit {MAX_EVENT_BYTES})"


def test_accept_object() -> None:
    accepted = accept_object(event(), "queue_log:5", None)
    assert isinstance(accepted, Accepted)
    assert json.loads(accepted.value) == event()
    rejected = accept_object([1, 2], "http:req-1#0", None)
    assert isinstance(rejected, Rejected) and rejected.category == "not_object"
    assert rejected.letter.original == b"[1,2]" and rejected.origin == "http:req-1#0"
    with_original = accept_object(event(type="nope"), "http:req-1#1", None, original=b'{"type":"nope"}')
    assert isinstance(with_original, Rejected) and with_original.letter.original == b'{"type":"nope"}'
    number = accept_object(
        event(type="call.answered", data={"queue": "q", "agent": "a", "caller_id": "0501234567"}), "f:1", None
    )
    assert isinstance(number, Rejected) and b"0501234567" not in number.letter.original


def test_reject_for_adapter_errors() -> None:
    rejected = reject(b"1|2", "expected at least 5 '|'-separated fields", "queue_log:31")
    assert rejected.category == "adapter" and rejected.origin == "queue_log:31"
    assert reject(b"", "x", "o", category="made-up").category == "invalid"


def test_dead_letter_encoding_per_architecture() -> None:
    at = datetime(2025, 5, 13, 4, 3, 43, 120000, tzinfo=UTC)
    letter = DeadLetter(b'{"a":1}', "time: required", "events.jsonl:12", at)
    assert json.loads(letter.to_json()) == {
        "reason": "time: required",
        "origin": "events.jsonl:12",
        "received_at": "2025-05-13T04:03:43.120000Z",
        "original": '{"a":1}',
        "original_base64": base64.b64encode(b'{"a":1}').decode(),
    }
    assert letter.headers() == [("reason", b"time: required"), ("origin", b"events.jsonl:12")]
    assert decode_dead_letter(letter.to_json()) == letter


def test_dead_letter_of_bytes_that_are_not_text() -> None:
    letter = DeadLetter(b"\xff\x00abc", "event: not valid UTF-8 (byte 0)", "stdin:1")
    body = json.loads(letter.to_json())
    assert body["original"] is None and base64.b64decode(body["original_base64"]) == b"\xff\x00abc"
    assert decode_dead_letter(letter.to_json()).original == b"\xff\x00abc"


def test_long_originals_are_cut_at_a_character_boundary() -> None:
    text = ("é" * MAX_ORIGINAL_BYTES).encode()
    letter = DeadLetter(text, "event: too large", "f:1")
    assert len(letter.original) <= MAX_ORIGINAL_BYTES and letter.text == "é" * (MAX_ORIGINAL_BYTES // 2)


@pytest.mark.parametrize(
    "value",
    [
        b"[]",
        b"not json",
        b'{"reason":"r"}',
        b'{"reason":"r","origin":"o","received_at":"2025-01-01T00:00:00Z","original_base64":"***"}',
    ],
)
def test_decode_dead_letter_refuses_other_messages(value: bytes) -> None:
    with pytest.raises(DeadLetterError):
        decode_dead_letter(value)


def test_iter_lines_streams_and_bounds_long_lines() -> None:
    big = b"x" * (MAX_EVENT_BYTES + 10)
    data = b'{"a":1}\r\n\n' + big + b"\n" + b'{"b":2}'
    lines = list(iter_lines(io.BytesIO(data)))
    assert [(n, size) for n, _, size in lines] == [(1, -1), (2, -1), (3, len(big)), (4, -1)]
    assert lines[0][1] == b'{"a":1}\r\n' and lines[3][1] == b'{"b":2}'
    assert len(lines[2][1]) == MAX_EVENT_BYTES + 3  # only the head of the long line is held
    exact = b"y" * MAX_EVENT_BYTES + b"\r\n"
    assert list(iter_lines(io.BytesIO(exact))) == [(1, exact, -1)]
    assert list(iter_lines(io.BytesIO(b""))) == []

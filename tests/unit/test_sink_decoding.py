"""The sink's fast paths (input events, SLA outcomes) give exactly what the full validation
gives, and never accept what the full validation refuses."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas import INPUT_EVENT_TYPES, InvalidEvent, decode_event
from sinks.db.decoding import _fast_outcome, _Unusual, decode_input, decode_pipeline_event
from sinks.db.records import SLA_TYPES, EventRecord, OutcomeRecord
from tests.unit.test_schemas_properties import ANY_JSON, KNOWN_ATTRIBUTES, PROPERTY, raw_events

OUTCOME_FIELDS = ["ticket_id", "target", "policy", "deadline", "channel", "kind", "category", "priority"]


def outcome_events() -> st.SearchStrategy[dict[str, Any]]:
    return raw_events().filter(lambda raw: raw["type"] in SLA_TYPES)


def full_validation(raw: bytes) -> OutcomeRecord | None:
    """What `schemas.decode_event` makes of `raw`: the record, or None when it refuses it."""
    try:
        event = decode_event(raw)
    except InvalidEvent:
        return None
    return OutcomeRecord.from_event(event) if event.type in SLA_TYPES else None


def fast_path(raw: bytes) -> OutcomeRecord | None:
    try:
        return _fast_outcome(raw)
    except _Unusual:
        return None


@PROPERTY
@given(outcome_events())
def test_a_valid_outcome_reads_the_same_either_way(raw: dict[str, Any]) -> None:
    message = json.dumps(raw).encode()
    expected = full_validation(message)
    assert expected is not None
    found = fast_path(message)
    if "data" in raw and set(raw["data"]) == set(OUTCOME_FIELDS) and set(raw) <= KNOWN_ATTRIBUTES:
        assert found == expected  # the common case takes the fast path
    assert found in (None, expected)
    assert decode_pipeline_event(message) == expected


@PROPERTY
@given(outcome_events(), st.data())
def test_a_changed_outcome_is_never_accepted_by_the_fast_path_alone(raw: dict[str, Any], data: st.DataObject) -> None:
    where = data.draw(st.sampled_from([*(f"data.{name}" for name in OUTCOME_FIELDS), *KNOWN_ATTRIBUTES, "x"]))
    value = data.draw(
        st.none()
        | ANY_JSON
        | st.sampled_from(
            ["", " ", "crm", "resolution", "urgent", "sla.met", "2025-03-01T10:00:00", "urn:tawasul:schema:sla.met:1"]
        )
    )
    if where.startswith("data."):
        raw["data"][where.removeprefix("data.")] = value
    else:
        raw[where] = value
    message = json.dumps(raw).encode()
    expected = full_validation(message)
    assert fast_path(message) in (None, expected), f"the fast path accepted {where}={value!r}"


def input_events() -> st.SearchStrategy[dict[str, Any]]:
    return raw_events().filter(lambda raw: raw["type"] in INPUT_EVENT_TYPES)


@PROPERTY
@given(input_events())
def test_an_input_event_reads_as_the_full_validation_reads_it(raw: dict[str, Any]) -> None:
    message = json.dumps(raw, ensure_ascii=False).encode()
    record = decode_input(message)
    expected = EventRecord.from_event(decode_event(message))
    assert (record.id, record.type, record.subject, record.source) == (
        expected.id,
        expected.type,
        expected.subject,
        expected.source,
    )
    assert record.time == expected.time and record.time.utcoffset() == expected.time.utcoffset()
    assert record.data == expected.data  # the values the contract reads (35.0 == 35, "crm" == Channel.CRM)
    assert json.loads(record.payload) == raw  # the text as it travelled


@PROPERTY
@given(input_events(), st.sampled_from(["data", "time", "id", "subject", "source", "specversion"]), ANY_JSON)
def test_a_broken_input_event_is_refused_with_the_full_reasons(raw: dict[str, Any], name: str, value: Any) -> None:
    raw[name] = value
    message = json.dumps(raw).encode()
    try:
        expected: object = EventRecord.from_event(decode_event(message))
    except InvalidEvent as exc:
        expected = str(exc)
    try:
        found: object = decode_input(message)
    except InvalidEvent as exc:
        found = str(exc)
    if isinstance(expected, str):
        assert found == expected
    else:
        assert isinstance(found, EventRecord) and found.id == expected.id  # type: ignore[attr-defined]

"""The sink's fast path for SLA outcomes gives exactly what the full validation gives, and
never accepts what the full validation refuses."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas import InvalidEvent, decode_event
from sinks.db.decoding import _fast_outcome, _Unusual, decode_pipeline_event
from sinks.db.records import SLA_TYPES, OutcomeRecord
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

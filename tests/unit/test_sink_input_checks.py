"""The sink's checks of input events written past intake: contract, size, personal data."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from producers.simulator import Params, iter_events, parse_when
from schemas import MAX_EVENT_BYTES, InvalidEvent, new_event
from sinks.input_checks import decode_clean_input


def ticket(event_type: str, data: dict[str, Any], **changes: Any) -> bytes:
    raw = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/channels/crm",
        "type": event_type,
        "time": "2025-03-03T09:00:00+04:00",
        "subject": "T-1",
        "data": data,
        **changes,
    }
    return json.dumps(raw).encode()


def test_every_simulated_event_passes_unchanged() -> None:
    start = parse_when("2025-03-03T08:00:00+04:00")
    for raw in iter_events(Params(start, start + timedelta(hours=6), seed=4, scale=0.3, tail=True)):
        body = json.dumps(raw, ensure_ascii=False).encode()
        assert decode_clean_input(body).payload == body.decode()


OPENED = {"channel": "crm", "kind": "request", "category": "c", "priority": "low"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (ticket("ticket.opened", {**OPENED, "priority": "asap"}), "data.priority: must be one of"),
        (ticket("ticket.opened", {**OPENED, "category": " "}), "data.category: must not be empty or blank"),
        (ticket("ticket.opened", {**OPENED, "location": "MSQ-1"}), "data.location: must be a JSON object"),
        (
            ticket("ticket.opened", {**OPENED, "location": {"mosque_id": 7}}),
            "data.location.mosque_id: must be a string",
        ),
        (ticket("ticket.paused", {}), "data.reason: required"),
        (ticket("ticket.priority_changed", {"priority": None}), "data.priority: must be one of"),
        (ticket("ticket.assigned", {"agent": ""}), "data.agent: must not be empty"),
        (ticket("ticket.resolved", {"resolution": 5}), "data.resolution: must be a string"),
        (
            ticket("ticket.opened", OPENED, dataschema="urn:tawasul:schema:ticket.opened:9"),
            "dataschema: unknown version",
        ),
        (ticket("ticket.opened", {**OPENED, "notes": "x" * MAX_EVENT_BYTES}), "event: too large"),
        (ticket("ticket.opened", {**OPENED, "notes": "call 050 123 4567"}), "data.notes: holds a phone number"),
    ],
)
def test_invalid_ticket_events_are_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_clean_input(body)
    assert reason in str(caught.value)
    assert "4567" not in str(caught.value)


def test_valid_ticket_events_of_every_shape_pass() -> None:
    for event_type, data in [
        ("ticket.opened", {**OPENED, "location": {"mosque_id": "MSQ-1", "area": None}, "department": None}),
        ("ticket.assigned", {"team": "t"}),
        ("ticket.paused", {"reason": "waiting"}),
        ("ticket.resolved", {"resolution": ""}),
        ("ticket.closed", {"extra": [1, {"a": None}]}),
    ]:
        body = new_event(event_type, "T-1", "2025-03-03T09:00:00+04:00", data, source="/channels/crm").to_json()
        assert decode_clean_input(body).type == event_type

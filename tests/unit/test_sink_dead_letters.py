"""What the sink dead-letters: every record type as readable JSON, phone numbers redacted."""

from __future__ import annotations

import json

from schemas import new_event, parse_event
from sinks.db.records import EventRecord, OutcomeRecord, TicketState
from sinks.dead_letters import DeadLetterOutbox, message_origin, record_bytes, record_origin

OUTCOME = new_event(
    "sla.breached",
    "T-9",
    "2025-03-04T11:30:00+04:00",
    {
        "ticket_id": "T-9",
        "target": "resolution",
        "policy": "crm-standard",
        "deadline": "2025-03-04T11:30:00+04:00",
        "channel": "crm",
        "kind": "request",
        "category": "licensing.renewal",
        "priority": "normal",
    },
    source="/stream-processors/sla",
    id="T-9:resolution:sla.breached:0",
)
STATE = {
    "ticket_id": "T-9",
    "channel": "crm",
    "kind": "request",
    "category": "licensing.renewal",
    "priority": "normal",
    "department": None,
    "status": "open",
    "policy": "crm-standard",
    "opened_at": "2025-03-03T09:00:00+04:00",
    "resolved_at": None,
    "closed_at": None,
    "updated_at": "2025-03-04T11:30:00+04:00",
    "version": 4,
    "targets": {
        "resolution": {"deadline": "2025-03-04T11:30:00+04:00", "state": "breached", "warned": True, "breached": True}
    },
}


def test_an_event_record_is_kept_as_the_event_it_was() -> None:
    event = new_event(
        "ticket.opened",
        "T-1",
        "2025-03-03T09:00:00+04:00",
        {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"},
        source="/channels/crm",
        id="T-1-open",
    )
    record = EventRecord.from_event(event)
    assert parse_event(json.loads(record_bytes(record))) == event
    assert record_origin(record) == "sink:EventRecord"


def test_outcomes_and_ticket_states_are_kept_as_their_fields() -> None:
    outcome = json.loads(record_bytes(OutcomeRecord.from_event(OUTCOME)))
    assert outcome["id"] == OUTCOME.id and outcome["deadline"] == "2025-03-04T11:30:00+04:00"
    state = json.loads(record_bytes(TicketState.from_dict(STATE)))
    assert state["ticket_id"] == "T-9" and state["version"] == 4
    assert state["targets"][0]["target"] == "resolution" and state["targets"][0]["breached"] is True
    assert json.loads(record_bytes(OUTCOME)) == json.loads(OUTCOME.to_json())


def test_a_letter_never_carries_a_raw_phone_number() -> None:
    class Unused:
        def dead_letter(self, *_: object, **__: object) -> None:
            raise AssertionError("nothing is sent before confirm")

    outbox = DeadLetterOutbox(Unused())  # type: ignore[arg-type]
    outbox.add(
        b'{"type": "call.offered", "data": {"caller_number": "+971501234567"}',
        "not valid JSON",
        message_origin("tawasul.events", 3, 42),
    )
    (letter,) = outbox.pending
    assert b"+971501234567" not in letter.original and b"[redacted]" in letter.original
    assert letter.origin == "kafka:tawasul.events/3@42" and len(outbox) == 1

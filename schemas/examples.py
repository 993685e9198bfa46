"""One valid, realistic example per event type (for the catalogue, tests and demos)."""

from __future__ import annotations

from typing import Any

from schemas.envelope import Event
from schemas.parsing import new_event

_TICKET = "T-2025-000123"
_CALL = "C-20250304-0042"
_VISIT = "V-20250304-017"


def example_data(event_type: str) -> dict[str, Any]:
    """A fresh `data` object for a type; KeyError for an unknown type."""
    sla = {
        "ticket_id": _TICKET,
        "target": "resolution",
        "policy": "mosque-urgent",
        "deadline": "2025-03-04T13:00:00+04:00",
        "channel": "complaints_platform",
        "kind": "facility_report",
        "category": "mosque.air_conditioning",
        "priority": "urgent",
    }
    examples: dict[str, dict[str, Any]] = {
        "ticket.opened": {
            "channel": "complaints_platform",
            "kind": "facility_report",
            "category": "mosque.air_conditioning",
            "priority": "urgent",
            "department": "mosque_affairs",
            "location": {"mosque_id": "MSQ-0412", "area": "Al Barsha"},
            "customer_ref": "c-7f3a9e",
        },
        "ticket.acknowledged": {},
        "ticket.assigned": {"team": "maintenance-west", "agent": "a-1042"},
        "ticket.paused": {"reason": "waiting_on_customer"},
        "ticket.resumed": {},
        "ticket.priority_changed": {"priority": "high"},
        "ticket.resolved": {"resolution": "ac_unit_repaired"},
        "ticket.reopened": {},
        "ticket.closed": {},
        "call.offered": {"queue": "general", "language": "ar", "caller_ref": "k-91bd02"},
        "call.answered": {"queue": "general", "agent": "a-2210"},
        "call.abandoned": {"queue": "general"},
        "call.ended": {"queue": "general", "agent": "a-2210", "wrap_up_seconds": 35},
        "visit.checked_in": {"centre": "main_building", "service": "marriage_certificate"},
        "visit.called": {"centre": "main_building", "counter": "7"},
        "visit.completed": {"centre": "main_building"},
        "visit.no_show": {"centre": "main_building"},
        "survey.submitted": {"channel": "crm", "score": 5, "scale": 5, "comment": "Quick fix"},
        "sla.warning": {**sla, "target": "first_response", "deadline": "2025-03-04T10:00:00+04:00"},
        "sla.breached": sla,
        "sla.met": {**sla, "target": "first_response", "deadline": "2025-03-04T10:00:00+04:00"},
        "sla.breach_withdrawn": {**sla, "withdrawn_id": f"{_TICKET}:resolution:sla.breached:0"},
        "sla.warning_withdrawn": {
            **sla,
            "target": "first_response",
            "deadline": "2025-03-04T10:00:00+04:00",
            "withdrawn_id": f"{_TICKET}:first_response:sla.warning:0",
        },
        "kpi.snapshot": {
            "figure": "calls.service_level",
            "window": "15m",
            "scope": {"queue": "general"},
            "value": 0.8125,
            "count": 48,
            "as_of": "2025-03-04T10:15:00+04:00",
        },
    }
    return examples[event_type]


def _subject_and_source(event_type: str) -> tuple[str, str]:
    family = event_type.partition(".")[0]
    return {
        "ticket": (_TICKET, "/channels/complaints/04"),
        "call": (_CALL, "/channels/pbx/main"),
        "visit": (_VISIT, "/channels/queue/main_building"),
        "survey": (_TICKET, "/channels/survey"),
        "sla": (_TICKET, "/processors/sla"),
        "kpi": ("calls.service_level/15m", "/processors/kpi"),
    }[family]


def example_event(event_type: str) -> Event:
    """A complete example event of a type, with a fixed id and time."""
    subject, source = _subject_and_source(event_type)
    return new_event(
        event_type,
        subject,
        "2025-03-04T09:12:30+04:00",
        example_data(event_type),
        source,
        id=f"example-{event_type}",
    )

"""Closed value sets of the event contract."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class EventType(StrEnum):
    """Every event type of the contract, plus the processors' SLA and KPI events."""

    TICKET_OPENED = "ticket.opened"
    TICKET_ACKNOWLEDGED = "ticket.acknowledged"
    TICKET_ASSIGNED = "ticket.assigned"
    TICKET_PAUSED = "ticket.paused"
    TICKET_RESUMED = "ticket.resumed"
    TICKET_PRIORITY_CHANGED = "ticket.priority_changed"
    TICKET_RESOLVED = "ticket.resolved"
    TICKET_REOPENED = "ticket.reopened"
    TICKET_CLOSED = "ticket.closed"
    CALL_OFFERED = "call.offered"
    CALL_ANSWERED = "call.answered"
    CALL_ABANDONED = "call.abandoned"
    CALL_ENDED = "call.ended"
    VISIT_CHECKED_IN = "visit.checked_in"
    VISIT_CALLED = "visit.called"
    VISIT_COMPLETED = "visit.completed"
    VISIT_NO_SHOW = "visit.no_show"
    SURVEY_SUBMITTED = "survey.submitted"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"
    SLA_MET = "sla.met"
    SLA_BREACH_WITHDRAWN = "sla.breach_withdrawn"
    SLA_WARNING_WITHDRAWN = "sla.warning_withdrawn"
    KPI_SNAPSHOT = "kpi.snapshot"


class Channel(StrEnum):
    """Where a ticket or survey came from."""

    CALL = "call"
    CRM = "crm"
    COMPLAINTS_PLATFORM = "complaints_platform"
    WALK_IN = "walk_in"
    EMAIL = "email"
    WEB = "web"
    APP = "app"
    SOCIAL = "social"


class Kind(StrEnum):
    """What a ticket is."""

    REQUEST = "request"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    INQUIRY = "inquiry"
    COMPLIMENT = "compliment"
    FACILITY_REPORT = "facility_report"


class Priority(StrEnum):
    """Ticket priority, lowest first."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Language(StrEnum):
    """Language a caller chose."""

    AR = "ar"
    EN = "en"


class SlaTarget(StrEnum):
    """The two SLA clocks of a ticket."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


EVENT_TYPES: Final[frozenset[str]] = frozenset(t.value for t in EventType)
PROCESSOR_EVENT_TYPES: Final[frozenset[str]] = frozenset(
    {
        EventType.SLA_WARNING,
        EventType.SLA_BREACHED,
        EventType.SLA_MET,
        EventType.SLA_BREACH_WITHDRAWN,
        EventType.SLA_WARNING_WITHDRAWN,
        EventType.KPI_SNAPSHOT,
    }
)
"""Types only the stream processors produce: valid on their topics, never accepted as input."""
INPUT_EVENT_TYPES: Final[frozenset[str]] = EVENT_TYPES - PROCESSOR_EVENT_TYPES
"""Types a channel adapter publishes (contract section 2: tickets, calls, visits, surveys)."""
CHANNELS: Final[tuple[str, ...]] = tuple(c.value for c in Channel)
KINDS: Final[tuple[str, ...]] = tuple(k.value for k in Kind)
PRIORITIES: Final[tuple[str, ...]] = tuple(p.value for p in Priority)
LANGUAGES: Final[tuple[str, ...]] = tuple(lang.value for lang in Language)
SLA_TARGETS: Final[tuple[str, ...]] = tuple(t.value for t in SlaTarget)
SURVEY_SCALES: Final[tuple[int, ...]] = (3, 5)

SPECVERSION: Final = "1.0"
DATACONTENTTYPE: Final = "application/json"
MAX_EVENT_BYTES: Final = 256 * 1024

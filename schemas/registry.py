"""Which `data` model validates which event type at which schema version.

An event names its schema version in the CloudEvents `dataschema` attribute as
`urn:tawasul:schema:<type>:<version>`; without `dataschema` it is version 1.
A new version of a type is added here next to the old one, never in place of it.
"""

from __future__ import annotations

import functools
import re
from types import MappingProxyType
from typing import Final

from schemas.base import EventData
from schemas.call import CallAbandonedData, CallAnsweredData, CallEndedData, CallOfferedData
from schemas.kpi import KpiSnapshotData
from schemas.sla import SlaBreachedData, SlaBreachWithdrawnData, SlaMetData, SlaWarningData, SlaWarningWithdrawnData
from schemas.survey import SurveySubmittedData
from schemas.ticket import (
    TicketAcknowledgedData,
    TicketAssignedData,
    TicketClosedData,
    TicketOpenedData,
    TicketPausedData,
    TicketPriorityChangedData,
    TicketReopenedData,
    TicketResolvedData,
    TicketResumedData,
)
from schemas.values import EventType
from schemas.visit import VisitCalledData, VisitCheckedInData, VisitCompletedData, VisitNoShowData

DATASCHEMA_PREFIX: Final = "urn:tawasul:schema:"
DATASCHEMA_PATTERN: Final = r"^urn:tawasul:schema:[a-z_]+\.[a-z_]+:[1-9][0-9]*$"
DEFAULT_VERSION: Final = 1
_DATASCHEMA: Final = re.compile(DATASCHEMA_PATTERN)

DATA_MODELS: Final[MappingProxyType[tuple[str, int], type[EventData]]] = MappingProxyType(
    {
        (EventType.TICKET_OPENED.value, 1): TicketOpenedData,
        (EventType.TICKET_ACKNOWLEDGED.value, 1): TicketAcknowledgedData,
        (EventType.TICKET_ASSIGNED.value, 1): TicketAssignedData,
        (EventType.TICKET_PAUSED.value, 1): TicketPausedData,
        (EventType.TICKET_RESUMED.value, 1): TicketResumedData,
        (EventType.TICKET_PRIORITY_CHANGED.value, 1): TicketPriorityChangedData,
        (EventType.TICKET_RESOLVED.value, 1): TicketResolvedData,
        (EventType.TICKET_REOPENED.value, 1): TicketReopenedData,
        (EventType.TICKET_CLOSED.value, 1): TicketClosedData,
        (EventType.CALL_OFFERED.value, 1): CallOfferedData,
        (EventType.CALL_ANSWERED.value, 1): CallAnsweredData,
        (EventType.CALL_ABANDONED.value, 1): CallAbandonedData,
        (EventType.CALL_ENDED.value, 1): CallEndedData,
        (EventType.VISIT_CHECKED_IN.value, 1): VisitCheckedInData,
        (EventType.VISIT_CALLED.value, 1): VisitCalledData,
        (EventType.VISIT_COMPLETED.value, 1): VisitCompletedData,
        (EventType.VISIT_NO_SHOW.value, 1): VisitNoShowData,
        (EventType.SURVEY_SUBMITTED.value, 1): SurveySubmittedData,
        (EventType.SLA_WARNING.value, 1): SlaWarningData,
        (EventType.SLA_BREACHED.value, 1): SlaBreachedData,
        (EventType.SLA_MET.value, 1): SlaMetData,
        (EventType.SLA_BREACH_WITHDRAWN.value, 1): SlaBreachWithdrawnData,
        (EventType.SLA_WARNING_WITHDRAWN.value, 1): SlaWarningWithdrawnData,
        (EventType.KPI_SNAPSHOT.value, 1): KpiSnapshotData,
    }
)
"""(type, version) -> the frozen model of `data`."""

CURRENT_VERSIONS: Final[MappingProxyType[str, int]] = MappingProxyType(
    {t: max(v for (t2, v) in DATA_MODELS if t2 == t) for (t, _) in DATA_MODELS}
)
"""type -> the version `new_event` writes."""


def versions(event_type: str) -> tuple[int, ...]:
    """Every schema version known for a type, oldest first."""
    return tuple(sorted(v for (t, v) in DATA_MODELS if t == event_type))


def data_model(event_type: str, version: int | None = None) -> type[EventData]:
    """The `data` model of a type (current version by default); KeyError if unknown."""
    return DATA_MODELS[(event_type, CURRENT_VERSIONS[event_type] if version is None else version)]


def dataschema_uri(event_type: str, version: int | None = None) -> str:
    """`urn:tawasul:schema:<type>:<version>` (current version by default)."""
    chosen = CURRENT_VERSIONS[event_type] if version is None else version
    return f"{DATASCHEMA_PREFIX}{event_type}:{chosen}"


@functools.lru_cache(maxsize=256)
def parse_dataschema(uri: str) -> tuple[str, int] | None:
    """(type, version) named by a dataschema URN, or None when it is not one (remembered:
    each event's validation asks several times, and there are few distinct URNs)."""
    if _DATASCHEMA.fullmatch(uri) is None:
        return None
    event_type, _, version = uri[len(DATASCHEMA_PREFIX) :].rpartition(":")
    return event_type, int(version)

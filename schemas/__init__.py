"""The Tawasul event contract: CloudEvents 1.0 envelope, typed `data`, validation.

```python
from schemas import parse_event, decode_event, new_event, InvalidEvent
ev = decode_event(message_value)      # bytes -> Event, raises InvalidEvent
ev.data.priority                      # typed, frozen
ev.to_json()                          # compact UTF-8 JSON, round-trips
check_event(text)                     # checked fields without pydantic objects, or None
encode_json(body)                     # json.dumps' bytes at msgspec's speed
decode_ticket_state(value)            # bytes -> TicketStateMessage (typed), BadTicketState
```
"""

from __future__ import annotations

from schemas.base import EventData
from schemas.call import CallAbandonedData, CallAnsweredData, CallEndedData, CallOfferedData
from schemas.codec import encode_json
from schemas.envelope import Event
from schemas.errors import FieldError, InvalidEvent
from schemas.fast import CheckedEvent, check_event
from schemas.kpi import KpiSnapshotData
from schemas.parsing import decode_event, new_event, parse_event
from schemas.registry import CURRENT_VERSIONS, data_model, dataschema_uri, parse_dataschema
from schemas.sla import (
    SlaBreachedData,
    SlaBreachWithdrawnData,
    SlaMetData,
    SlaOutcomeData,
    SlaWarningData,
    SlaWarningWithdrawnData,
    SlaWithdrawalData,
)
from schemas.survey import SurveySubmittedData
from schemas.ticket import (
    Location,
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
from schemas.ticket_state import (
    BadTicketState,
    TicketStateMessage,
    TicketTarget,
    decode_ticket_state,
    encode_ticket_state,
)
from schemas.values import (
    CHANNELS,
    DATACONTENTTYPE,
    EVENT_TYPES,
    INPUT_EVENT_TYPES,
    KINDS,
    LANGUAGES,
    MAX_EVENT_BYTES,
    PRIORITIES,
    PROCESSOR_EVENT_TYPES,
    SLA_TARGETS,
    SPECVERSION,
    SURVEY_SCALES,
    Channel,
    EventType,
    Kind,
    Language,
    Priority,
    SlaTarget,
)
from schemas.visit import VisitCalledData, VisitCheckedInData, VisitCompletedData, VisitNoShowData

__all__ = [
    "CHANNELS",
    "CURRENT_VERSIONS",
    "DATACONTENTTYPE",
    "EVENT_TYPES",
    "INPUT_EVENT_TYPES",
    "KINDS",
    "LANGUAGES",
    "MAX_EVENT_BYTES",
    "PRIORITIES",
    "PROCESSOR_EVENT_TYPES",
    "SLA_TARGETS",
    "SPECVERSION",
    "SURVEY_SCALES",
    "BadTicketState",
    "CallAbandonedData",
    "CallAnsweredData",
    "CallEndedData",
    "CallOfferedData",
    "Channel",
    "CheckedEvent",
    "Event",
    "EventData",
    "EventType",
    "FieldError",
    "InvalidEvent",
    "Kind",
    "KpiSnapshotData",
    "Language",
    "Location",
    "Priority",
    "SlaBreachWithdrawnData",
    "SlaBreachedData",
    "SlaMetData",
    "SlaOutcomeData",
    "SlaTarget",
    "SlaWarningData",
    "SlaWarningWithdrawnData",
    "SlaWithdrawalData",
    "SurveySubmittedData",
    "TicketAcknowledgedData",
    "TicketAssignedData",
    "TicketClosedData",
    "TicketOpenedData",
    "TicketPausedData",
    "TicketPriorityChangedData",
    "TicketReopenedData",
    "TicketResolvedData",
    "TicketResumedData",
    "TicketStateMessage",
    "TicketTarget",
    "VisitCalledData",
    "VisitCheckedInData",
    "VisitCompletedData",
    "VisitNoShowData",
    "check_event",
    "data_model",
    "dataschema_uri",
    "decode_event",
    "decode_ticket_state",
    "encode_json",
    "encode_ticket_state",
    "new_event",
    "parse_dataschema",
    "parse_event",
]

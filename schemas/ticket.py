"""`data` of the ticket events (service requests, complaints, facility reports, ...)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from schemas.base import EventData
from schemas.fields import Name, Text
from schemas.values import Channel, Kind, Priority


class Location(BaseModel):
    """Where a facility report is about."""

    model_config = ConfigDict(frozen=True, extra="allow", use_attribute_docstrings=True, hide_input_in_errors=True)
    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)

    mosque_id: Name | None = None
    """Identifier of the mosque or facility."""
    area: Name | None = None
    """Area or district, e.g. `Al Barsha`."""


class TicketOpenedData(EventData):
    """A ticket was opened on any channel; both SLA clocks start."""

    channel: Channel
    kind: Kind
    category: Name
    """Dotted category, e.g. `mosque.air_conditioning`."""
    priority: Priority
    department: Name | None = None
    location: Location | None = None
    customer_ref: Name | None = None
    """Opaque, already pseudonymised customer reference."""


class TicketAcknowledgedData(EventData):
    """First response to the customer; stops the first-response clock."""


class TicketAssignedData(EventData):
    """The ticket was given to a team or agent."""

    team: Name | None = None
    agent: Name | None = None


class TicketPausedData(EventData):
    """Every running SLA clock stops until `ticket.resumed`."""

    reason: Name
    """Why, e.g. `waiting_on_customer`."""


class TicketResumedData(EventData):
    """The paused clocks run again."""


class TicketPriorityChangedData(EventData):
    """New priority; policies are matched again."""

    priority: Priority


class TicketResolvedData(EventData):
    """The ticket was resolved; stops both clocks."""

    resolution: Text | None = None
    """Short resolution code or note."""


class TicketReopenedData(EventData):
    """The resolution clock restarts."""


class TicketClosedData(EventData):
    """Final; no later event changes the ticket."""

"""`data` of the SLA outcome events the stream processors emit (subject = ticket id)."""

from __future__ import annotations

from schemas.base import EventData
from schemas.fields import Name, Timestamp
from schemas.values import Channel, Kind, Priority, SlaTarget


class SlaOutcomeData(EventData):
    """Fields common to `sla.warning`, `sla.breached` and `sla.met`."""

    ticket_id: Name
    target: SlaTarget
    policy: Name
    """Name of the policy that applied."""
    deadline: Timestamp
    """When the target falls due (business time added to the opening)."""
    channel: Channel
    kind: Kind
    category: Name
    priority: Priority


class SlaWarningData(SlaOutcomeData):
    """The policy's `warn_at` share of a target has elapsed."""


class SlaBreachedData(SlaOutcomeData):
    """A target's deadline passed; emitted once per ticket and target."""


class SlaMetData(SlaOutcomeData):
    """A clock stopped within its target."""

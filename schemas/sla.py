"""`data` of the SLA outcome events the stream processors emit (subject = ticket id)."""

from __future__ import annotations

from schemas.base import EventData
from schemas.fields import Name, Timestamp
from schemas.values import Channel, Kind, Priority, SlaTarget


class SlaOutcomeData(EventData):
    """Fields common to the SLA outcomes (`sla.warning`, `sla.breached`, `sla.met`, withdrawals)."""

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


class SlaWithdrawalData(SlaOutcomeData):
    """Fields common to the withdrawals: a late event proved an outcome fired live wrong."""

    withdrawn_id: Name
    """The id of the withdrawn outcome (same ticket and target)."""


class SlaBreachWithdrawnData(SlaWithdrawalData):
    """A breach fired live is withdrawn: a late event stopped the clock within the target. An
    `sla.met` of the same target follows."""


class SlaWarningWithdrawnData(SlaWithdrawalData):
    """A warning fired live is withdrawn: a late event stopped the clock before the warning
    instant. An `sla.met` of the same target follows."""

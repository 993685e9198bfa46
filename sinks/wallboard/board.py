"""The records `/api/wallboard` answers with (one `Board` per refresh)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class QueueFigures:
    """One call queue now and over the KPI window."""

    queue: str
    offered_today: int
    answered_today: int
    abandoned_today: int
    waiting: int
    longest_wait_seconds: float | None
    wait_status: str
    service_level: float | None
    service_level_status: str
    asa_seconds: float | None
    asa_status: str
    abandon_ratio: float | None


@dataclass(frozen=True)
class CallsFigures:
    """The contact centre: today's counts, the KPI window's figures (all queues) and each queue."""

    offered_today: int
    answered_today: int
    abandoned_today: int
    waiting: int
    longest_wait_seconds: float | None
    wait_status: str
    service_level: float | None
    service_level_status: str
    asa_seconds: float | None
    asa_status: str
    abandon_ratio: float | None
    abandon_status: str
    queues: tuple[QueueFigures, ...]


@dataclass(frozen=True)
class Satisfaction:
    """Satisfied share of one channel's survey responses in the KPI window, against its target."""

    channel: str
    ratio: float | None
    responses: int | None
    target: float | None
    status: str


@dataclass(frozen=True)
class Breach:
    """A recent `sla.breached` outcome; `late_seconds` runs from the deadline to resolution (or now)."""

    ticket_id: str
    target: str
    category: str
    channel: str
    kind: str
    priority: str
    deadline: datetime
    breached_at: datetime
    late_seconds: float
    still_open: bool


@dataclass(frozen=True)
class ChannelTickets:
    """Open tickets of one channel by SLA state."""

    channel: str
    on_track: int
    at_risk: int
    breached: int
    no_sla: int


@dataclass(frozen=True)
class TicketFigures:
    """Open tickets by SLA state, per channel, and the newest breaches."""

    on_track: int
    at_risk: int
    breached: int
    no_sla: int
    by_channel: tuple[ChannelTickets, ...]
    breaches: tuple[Breach, ...]


@dataclass(frozen=True)
class CentreFigures:
    """One walk-in centre today and now."""

    centre: str
    checked_in_today: int
    completed_today: int
    waiting: int
    longest_wait_seconds: float | None
    wait_status: str


@dataclass(frozen=True)
class Board:
    """Everything the wall display shows at one moment."""

    generated_at: datetime
    timezone: str
    window: str
    data_as_of: datetime | None
    stale: bool
    stale_after_seconds: float
    refresh_seconds: float
    keepalive_seconds: float
    calls: CallsFigures
    satisfaction: tuple[Satisfaction, ...]
    tickets: TicketFigures
    walk_in: tuple[CentreFigures, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as RFC 3339 with offset)."""
        result: dict[str, Any] = _jsonable(asdict(self))
        return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value

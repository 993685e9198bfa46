"""The `tawasul.tickets.state` message of a ticket (docs/architecture.md, "Messages between stages")."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from schemas.ticket_state import TargetStatus, TicketStateMessage, TicketTarget, encode_ticket_state, state_as_dict
from stream_processors.sla_step import Stored
from tawasul.domain import sla
from tawasul.domain.calendars import EPOCH
from tawasul.domain.policies import PolicyBook
from tawasul.domain.sla_state import BREACHED, STATUS_BREACHED, STATUS_MET, UNDECIDED, WARNING, fired_bit
from tawasul.domain.sla_timeline import CLOSED, PRIORITY, REOPENED, RESOLVED

_TARGET_STATES: dict[str, TargetStatus] = {STATUS_MET: "met", STATUS_BREACHED: "breached", UNDECIDED: "paused"}


def build_ticket_state(stored: Stored, now_us: int, book: PolicyBook) -> TicketStateMessage | None:
    """The ticket's current state as of `now_us` (at least its latest event); None before it is opened."""
    state = stored.sla
    profile = state.profile
    if profile is None:
        return None
    channel, kind, category, opened_priority, department = profile
    marks = state.marks
    priority = opened_priority
    opened_at = resolved_at = closed_at = None
    resolved = False
    for at, rank, _id, payload in marks:
        if opened_at is None and isinstance(payload, tuple):
            opened_at = at
        if rank == PRIORITY and isinstance(payload, str):
            priority = payload
        elif rank == RESOLVED:
            resolved, resolved_at = True, at
        elif rank == REOPENED:
            resolved, resolved_at = False, None
        elif rank == CLOSED:
            closed_at = at
    updated = marks[-1][0]
    policy = book.match(channel, kind, category, priority, department)
    targets: dict[str, TicketTarget] = {}
    for target, status in sla.evaluate_us(state, max(now_us, updated + 1), book).items():
        breached = status.status == STATUS_BREACHED or bool(state.fired & fired_bit(target, BREACHED))
        targets[target] = TicketTarget(
            deadline=None if status.deadline is None else status.deadline.isoformat(),
            state=_TARGET_STATES.get(status.status, "running"),
            warned=bool(state.fired & fired_bit(target, WARNING)),
            breached=breached,
        )
    return TicketStateMessage(
        ticket_id=state.ticket_id,
        channel=channel,
        kind=kind,
        category=category,
        priority=priority,
        department=department,
        status="closed" if closed_at is not None else "resolved" if resolved else "open",
        policy=None if policy is None else policy.name,
        opened_at=_iso(opened_at),
        resolved_at=_iso(resolved_at),
        closed_at=_iso(closed_at),
        updated_at=_iso(updated),
        version=stored.version,
        targets=targets,
        policies_sha256=book.sha256,
    )


def ticket_state(stored: Stored, now_us: int, book: PolicyBook) -> dict[str, Any] | None:
    """`build_ticket_state` as a plain dict, for the readers not yet on the typed message."""
    message = build_ticket_state(stored, now_us, book)
    return None if message is None else state_as_dict(message)


def encode_state(view: TicketStateMessage | Mapping[str, Any]) -> bytes:
    """The message value (the same bytes for the typed message and for its dict)."""
    return encode_ticket_state(view)


def _iso(us: int | None) -> str | None:
    """An instant in UTC, ISO 8601 (`from_us(us, UTC).isoformat()`)."""
    return None if us is None else (EPOCH + timedelta(microseconds=us)).isoformat()

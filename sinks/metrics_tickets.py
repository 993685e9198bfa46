"""The open tickets behind `tawasul_tickets_open`: compact memory, and the database's open tickets.

Each open ticket costs one small dict entry (its rank and label set packed in one int,
`TicketMemory`); closed tickets are a bounded LRU map.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from sqlalchemy import Connection, Engine, select

from schemas import CHANNELS, KINDS
from schemas.ticket_state import TicketStateMessage, TicketTarget, state_as_dict
from schemas.values import PRIORITIES
from sinks.db.models import Ticket
from sinks.db.models import TicketTarget as TicketTargetRow
from sinks.db.records import TicketState
from sinks.metrics_labels import SLA_STATES, TicketLabels


class Lru(OrderedDict[str, Any]):
    """An insertion-ordered map that forgets its oldest entry beyond `capacity`."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: str, value: Any) -> tuple[str, Any] | None:
        """Store `key`; return the evicted (key, value) when the map overflowed."""
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.capacity:
            return self.popitem(last=False)
        return None


class TicketMemory:
    """Open tickets (ticket id -> one int) and recently closed ones (an LRU of ranks).

    An open ticket's value packs its rank (`state_rank`: version, progress) and the index of its
    label set: `(version * 256 + progress) * slots + label index`, so the memory per open ticket
    is one dict entry, the id string and one int (measured in tests/unit/test_metrics_feed.py).
    """

    def __init__(self, closed_capacity: int) -> None:
        self.open: dict[str, int] = {}
        self.closed = Lru(closed_capacity)  # ticket id -> packed rank
        self.labels: list[TicketLabels] = []
        self._index: dict[TicketLabels, int] = {}
        self.slots = len(CHANNELS) * len(KINDS) * len(PRIORITIES) * len(SLA_STATES)

    @staticmethod
    def pack_rank(rank: tuple[int, int]) -> int:
        return rank[0] * 256 + min(max(rank[1], 0), 255)

    def get(self, ticket_id: str) -> tuple[int, TicketLabels | None] | None:
        """(packed rank, labels) of a known ticket; labels None when it is closed."""
        value = self.open.get(ticket_id)
        if value is not None:
            rank, index = divmod(value, self.slots)
            return rank, self.labels[index]
        closed: int | None = self.closed.get(ticket_id)
        return None if closed is None else (closed, None)

    def put(self, ticket_id: str, rank: int, labels: TicketLabels | None) -> None:
        if labels is None:
            self.open.pop(ticket_id, None)
            self.closed.put(ticket_id, rank)
            return
        self.closed.pop(ticket_id, None)
        index = self._index.get(labels)
        if index is None:
            index = self._index[labels] = len(self.labels)
            self.labels.append(labels)
        self.open[ticket_id] = rank * self.slots + index


def state_message(state: TicketState) -> TicketStateMessage:
    """The message a sink `TicketState` was read from (times as UTC ISO text)."""
    return TicketStateMessage(
        ticket_id=state.ticket_id,
        channel=state.channel,
        kind=state.kind,
        category=state.category,
        priority=state.priority,
        department=state.department,
        status=state.status,  # type: ignore[arg-type]  # read from a message: one of the statuses
        policy=state.policy,
        opened_at=_iso(state.opened_at),
        resolved_at=_iso(state.resolved_at),
        closed_at=_iso(state.closed_at),
        updated_at=_iso(state.updated_at),
        version=state.version,
        targets={
            t.target: TicketTarget(deadline=_iso(t.deadline), state=t.state, warned=t.warned, breached=t.breached)  # type: ignore[arg-type]
            for t in state.targets
        },
        policies_sha256=state.policies_sha256,
    )


def state_dict(state: TicketState) -> dict[str, Any]:
    """A sink `TicketState` as the message's JSON object."""
    return state_as_dict(state_message(state))


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def open_ticket_states(source: Engine | Connection) -> list[dict[str, Any]]:
    """The open tickets of the `tickets` / `ticket_targets` tables, as ticket-state dicts."""
    query = (
        select(
            Ticket.ticket_id,
            Ticket.channel,
            Ticket.kind,
            Ticket.priority,
            Ticket.policy,
            Ticket.version,
            TicketTargetRow.target,
            TicketTargetRow.state,
            TicketTargetRow.warned,
            TicketTargetRow.breached,
        )
        .select_from(Ticket)
        .outerjoin(TicketTargetRow, TicketTargetRow.ticket_id == Ticket.ticket_id)
        .where(Ticket.status == "open")
    )
    if isinstance(source, Engine):
        with source.connect() as connection:
            rows = connection.execute(query).all()
    else:
        rows = source.execute(query).all()
    states: dict[str, dict[str, Any]] = {}
    for ticket_id, channel, kind, priority, policy, version, target, state, warned, breached in rows:
        entry = states.setdefault(
            ticket_id,
            {
                "ticket_id": ticket_id,
                "channel": channel,
                "kind": kind,
                "priority": priority,
                "status": "open",
                "policy": policy,
                "version": version,
                "targets": {},
            },
        )
        if target is not None:
            entry["targets"][target] = {"state": state, "warned": bool(warned), "breached": bool(breached)}
    return list(states.values())

"""What the database sink stores, as plain rows: events, ticket states, outcomes, KPI snapshots.

Rows are dicts keyed by column name, ready for an `executemany`. Strings that a database
driver cannot store (a lone surrogate, a NUL character) are escaped with backslashes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas import Event, KpiSnapshotData, SlaOutcomeData
from schemas.ticket_state import BadTicketState, TicketStateMessage, parse_instant, ticket_state_from
from tawasul.domain.kpi_state import target_progress
from tawasul.domain.kpis import is_satisfied

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
WITHDRAWALS = {"sla.breach_withdrawn": "sla.breached", "sla.warning_withdrawn": "sla.warning"}
"""Withdrawal type -> the type of the outcome it withdraws (`tawasul.domain.sla_state.WITHDRAWS`)."""
SLA_TYPES = frozenset({"sla.warning", "sla.breached", "sla.met", *WITHDRAWALS})
KPI_TYPE = "kpi.snapshot"
TICKET_STATUSES = frozenset({"open", "resolved", "closed"})

Row = dict[str, Any]


class BadRecord(ValueError):
    """A record the sink cannot store (it names the field, never the value)."""


def clean_text(value: str) -> str:
    """`value`, with what UTF-8 or PostgreSQL cannot hold (lone surrogates, NUL) escaped."""
    if value.isascii():
        return value.replace("\x00", "\\x00") if "\x00" in value else value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00") if "\x00" in value else value


def _opt_text(value: object) -> str | None:
    return None if value is None else clean_text(str(value))


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """`end - start` in seconds (exact to the microsecond), None when either is missing."""
    if start is None or end is None:
        return None
    return ((end - start) // timedelta(microseconds=1)) / 1_000_000


@dataclass(frozen=True)
class TargetState:
    """One SLA target as carried by a ticket-state message."""

    target: str
    deadline: datetime | None
    state: str
    warned: bool
    breached: bool


@dataclass(frozen=True)
class TicketState:
    """A `tawasul.tickets.state` message (see docs/architecture.md, Messages between stages)."""

    ticket_id: str
    channel: str
    kind: str
    category: str
    priority: str
    department: str | None
    status: str
    policy: str | None
    opened_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime | None
    version: int
    targets: tuple[TargetState, ...]
    policies_sha256: str | None = None
    """The hash of the policy book that produced this state (None from an older worker)."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TicketState:
        """Parse a decoded message; raises `BadRecord` naming the first bad field."""
        try:
            return cls.from_message(ticket_state_from(raw))
        except BadTicketState as exc:
            raise BadRecord(str(exc)) from None

    @classmethod
    def from_message(cls, message: TicketStateMessage) -> TicketState:
        """The rows of a typed message (`schemas.ticket_state`); raises `BadRecord`."""
        try:
            return cls(
                ticket_id=clean_text(message.ticket_id),
                channel=clean_text(message.channel),
                kind=clean_text(message.kind),
                category=clean_text(message.category),
                priority=clean_text(message.priority),
                department=_opt_text(message.department),
                status=message.status,
                policy=_opt_text(message.policy),
                opened_at=parse_instant(message.opened_at, "opened_at"),
                resolved_at=parse_instant(message.resolved_at, "resolved_at"),
                closed_at=parse_instant(message.closed_at, "closed_at"),
                updated_at=parse_instant(message.updated_at, "updated_at"),
                version=message.version,
                targets=tuple(
                    TargetState(
                        target=clean_text(name),
                        deadline=parse_instant(target.deadline, f"targets.{clean_text(name)}.deadline"),
                        state=target.state,
                        warned=target.warned,
                        breached=target.breached,
                    )
                    for name, target in sorted(message.targets.items())
                ),
                policies_sha256=_opt_text(message.policies_sha256),
            )
        except BadTicketState as exc:
            raise BadRecord(str(exc)) from None

    @property
    def rank(self) -> tuple[int, int]:
        """(version, progress): of two states of one ticket, the later ranks higher (see
        `kpi_state.target_progress`: at one version, only warnings and breaches are added)."""
        return self.version, sum(target_progress(t.warned, t.breached) for t in self.targets)

    def ticket_row(self) -> Row:
        return {
            "ticket_id": self.ticket_id,
            "channel": self.channel,
            "kind": self.kind,
            "category": self.category,
            "priority": self.priority,
            "department": self.department,
            "status": self.status,
            "policy": self.policy,
            "opened_at": self.opened_at,
            "resolved_at": self.resolved_at,
            "closed_at": self.closed_at,
            "updated_at": self.updated_at,
            "version": self.version,
            "policies_sha256": self.policies_sha256,
        }

    def target_rows(self) -> list[Row]:
        return [
            {
                "ticket_id": self.ticket_id,
                "target": t.target,
                "deadline": t.deadline,
                "state": t.state,
                "warned": t.warned,
                "breached": t.breached,
                "version": self.version,
                "policies_sha256": self.policies_sha256,
            }
            for t in self.targets
        ]


@dataclass(frozen=True)
class EventRecord:
    """An input event as the sink stores it: envelope, `data` as plain JSON, and its JSON text.

    `payload` is the event's JSON text as it travelled on Kafka (what intake published: the
    original valid JSON or `Event.to_json()`); `schemas.parse_event(json.loads(payload))`
    gives the event back.
    """

    id: str
    type: str
    subject: str
    time: datetime
    source: str
    data: Mapping[str, Any]
    payload: str

    @classmethod
    def from_event(cls, event: Event) -> EventRecord:
        body = event.to_json()
        return cls(
            id=event.id,
            type=event.type,
            subject=event.subject,
            time=event.time,
            source=event.source,
            data=json.loads(body)["data"],
            payload=body.decode("utf-8"),
        )


def event_row(record: EventRecord, stored_at: datetime) -> Row:
    """The `events` row of an accepted input event."""
    return {
        "id": clean_text(record.id),
        "type": record.type,
        "subject": clean_text(record.subject),
        "time": record.time,
        "source": clean_text(record.source),
        "payload": record.payload,
        "stored_at": stored_at,
    }


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """An `sla.*` outcome as the sink stores and counts it (`sinks.db.decoding` reads it from
    its JSON directly, or from a validated `Event` with `from_event`)."""

    id: str
    type: str
    time: datetime
    ticket_id: str
    target: str
    policy: str
    deadline: datetime
    channel: str
    kind: str
    category: str
    priority: str
    policies_sha256: str | None = None

    @classmethod
    def from_event(cls, event: Event) -> OutcomeRecord:
        data = event.data
        if event.type not in SLA_TYPES or not isinstance(data, SlaOutcomeData):
            raise BadRecord(f"{event.type}: not an SLA outcome")
        return cls(
            id=event.id,
            type=event.type,
            time=event.time,
            ticket_id=data.ticket_id,
            target=str(data.target),
            policy=data.policy,
            deadline=data.deadline,
            channel=str(data.channel),
            kind=str(data.kind),
            category=data.category,
            priority=str(data.priority),
            policies_sha256=_opt_text((data.model_extra or {}).get("policies_sha256")),
        )

    def row(self) -> Row:
        """The `sla_outcomes` row."""
        return {
            "id": clean_text(self.id),
            "type": self.type,
            "ticket_id": clean_text(self.ticket_id),
            "target": self.target,
            "policy": clean_text(self.policy),
            "deadline": self.deadline,
            "channel": self.channel,
            "kind": self.kind,
            "category": clean_text(self.category),
            "priority": self.priority,
            "time": self.time,
            "policies_sha256": self.policies_sha256,
        }


def withdrawn_by(withdrawal_id: str) -> str | None:
    """The id of the outcome a withdrawal withdraws, from the withdrawal's own id
    (`{ticket}:{target}:{type}:{cycle}`: same ticket, target and cycle); None for another id."""
    head, _, rest = withdrawal_id.rpartition(":")
    prefix, _, kind = head.rpartition(":")
    withdrawn = WITHDRAWALS.get(kind)
    return None if withdrawn is None or not prefix else f"{prefix}:{withdrawn}:{rest}"


def withdrawal_of(outcome_id: str) -> str | None:
    """The id a withdrawal of this warning or breach would have; None for other outcomes."""
    head, _, rest = outcome_id.rpartition(":")
    prefix, _, kind = head.rpartition(":")
    withdrawal = next((w for w, withdrawn in WITHDRAWALS.items() if withdrawn == kind), None)
    return None if withdrawal is None or not prefix else f"{prefix}:{withdrawal}:{rest}"


def kpi_key(figure: str, window: str, scope: Mapping[str, str]) -> str:
    """`figure|window|scope` with the scope as `k=v` pairs sorted by key, joined by `,`."""
    return f"{figure}|{window}|" + ",".join(f"{k}={scope[k]}" for k in sorted(scope))


def kpi_row(event: Event) -> Row:
    """The `kpi_snapshots` row of a `kpi.snapshot` event."""
    data = event.data
    if not isinstance(data, KpiSnapshotData):
        raise BadRecord(f"{event.type}: not a KPI snapshot")
    if data.count is not None and data.count > INT64_MAX:
        raise BadRecord("kpi.snapshot: data.count is too large to store")
    scope = {str(k): str(v) for k, v in data.scope.items()}
    return {
        "key": clean_text(kpi_key(data.figure, data.window, scope)),
        "figure": clean_text(data.figure),
        "window": clean_text(data.window),
        "scope": clean_text(json.dumps(scope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)),
        "value": None if data.value is None else float(data.value),
        "count": data.count,
        "as_of": data.as_of,
        "event_id": clean_text(event.id),
        "payload": event.to_json().decode("utf-8"),
    }


def survey_row(record: EventRecord) -> Row:
    """The `surveys` row of a `survey.submitted` event."""
    data = record.data
    score, scale = int(data["score"]), int(data.get("scale") or 5)
    return {
        "id": clean_text(record.id),
        "subject": clean_text(record.subject),
        "channel": str(data["channel"]),
        "score": score,
        "scale": scale,
        "satisfied": is_satisfied(score, scale),
        "time": record.time,
    }

"""The ticket-state messages (`tawasul.tickets.state`) as the KPIs read them: the backlog class.

`read_ticket_state` is the one place that reads the message (the typed
`schemas.ticket_state.TicketStateMessage`); `apply_ticket_state` folds its result into the
ticket's `SubjectRecord` (a later state wins, see `state_rank`). `sla_state_of` and `state_rank`
also take the plain form (a dict with the message's field names), which the sink builds from its
tables for the wall display and the metrics of open tickets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from sys import intern
from typing import Any, NamedTuple

from schemas.ticket_state import BadTicketState, TicketStateMessage, ticket_state_from
from tawasul.domain.kpi_records import Backlog, KpiStateError, SubjectRecord, _replace
from tawasul.domain.windows import to_us

__all__ = [
    "TicketStateView",
    "apply_backlog",
    "apply_ticket_state",
    "as_message",
    "read_ticket_state",
    "sla_state_of",
    "state_rank",
    "target_progress",
]


def sla_state_of(state: Mapping[str, Any]) -> str:
    """`breached` (a target breached), `at_risk` (a running target warned), `on_track`, or `none` (no policy)."""
    if state.get("policy") is None:
        return "none"
    targets = state.get("targets") or {}
    if not isinstance(targets, Mapping):
        raise KpiStateError("ticket state: targets must be an object")
    values = [t for t in targets.values() if isinstance(t, Mapping)]
    if any(t.get("breached") or t.get("state") == "breached" for t in values):
        return "breached"
    if any(t.get("warned") and t.get("state") in ("running", "paused") for t in values):
        return "at_risk"
    return "on_track"


_SLA_PROGRESS = {"none": 0, "on_track": 0, "at_risk": 1, "breached": 2}
"""Between two events (same `version`) a ticket's SLA state only moves forward, as deadlines pass."""


def target_progress(warned: bool, breached: bool) -> int:
    """How far one target has moved since the ticket's last event: 0, 1 (warned), 2 or 3 (breached).

    Between two events (same `version`) only deadlines passing change a ticket's state, and they
    only add warnings and breaches: of two states of one version, the higher progress is the later.
    """
    return 2 * bool(breached) + bool(warned)


def state_rank(state: Mapping[str, Any]) -> tuple[int, int]:
    """(version, progress) of a `tawasul.tickets.state` message: the later of two states ranks
    higher (progress: `target_progress` summed over the targets). Raises KpiStateError."""
    version = state.get("version")
    targets = state.get("targets") or {}
    if not isinstance(version, int) or not isinstance(targets, Mapping):
        raise KpiStateError("ticket state: version must be an integer and targets an object")
    return version, sum(
        target_progress(bool(t.get("warned")), bool(t.get("breached")))
        for t in targets.values()
        if isinstance(t, Mapping)
    )


class TicketStateView(NamedTuple):
    """What the KPIs take from one ticket-state message."""

    subject: str
    backlog: Backlog
    updated_us: int
    """The state's `updated_at` (0 when missing or unreadable)."""


def read_ticket_state(state: TicketStateMessage) -> TicketStateView:
    """The ticket id, backlog class and update time of a ticket-state message."""
    backlog = Backlog(
        state.version,
        state.status == "open",
        intern(state.channel),
        intern(state.kind),
        intern(state.priority),
        _sla_state(state),
    )
    return TicketStateView(state.ticket_id, backlog, _updated_us(state.updated_at))


def as_message(state: TicketStateMessage | Mapping[str, Any]) -> TicketStateMessage:
    """The typed message of a state given either way; raises KpiStateError naming what is wrong."""
    if isinstance(state, TicketStateMessage):
        return state
    try:
        return ticket_state_from(state)
    except BadTicketState as exc:
        raise KpiStateError(f"unreadable ticket state: {exc}") from None


def _sla_state(state: TicketStateMessage) -> str:
    """`sla_state_of` of the typed message."""
    if state.policy is None:
        return "none"
    targets = state.targets.values()
    if any(t.breached or t.state == "breached" for t in targets):
        return "breached"
    if any(t.warned and t.state in ("running", "paused") for t in targets):
        return "at_risk"
    return "on_track"


def apply_ticket_state(record: SubjectRecord | None, state: TicketStateMessage | Mapping[str, Any]) -> SubjectRecord:
    """Fold a `tawasul.tickets.state` message into the ticket's record (`apply_backlog`)."""
    return apply_backlog(record, read_ticket_state(as_message(state)))


def apply_backlog(record: SubjectRecord | None, view: TicketStateView) -> SubjectRecord:
    """The ticket's record after a ticket state: a higher `version` wins; at the same `version`
    (a warning or a breach fired by the clock, no new event) the state that is further along
    wins, so a message delivered again late never takes a breach back."""
    backlog = view.backlog
    current = record or SubjectRecord(subject=view.subject)
    held = current.backlog
    if held is not None and (
        held.version > backlog.version
        or (
            held.version == backlog.version and _SLA_PROGRESS.get(held.sla_state, 0) >= _SLA_PROGRESS[backlog.sla_state]
        )
    ):
        return current
    return _replace(current, {"backlog": backlog, "seen_us": max(current.seen_us, view.updated_us)})


def _updated_us(text: str | None) -> int:
    if text is None:
        return 0
    try:
        return to_us(datetime.fromisoformat(text))
    except ValueError:
        return 0

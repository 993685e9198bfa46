"""Turn the pipeline's output messages into the Prometheus metrics of `tawasul.infra.metrics`.

`MetricsFeed` is fed by the sink with what it consumes:

* `tawasul.tickets.state` JSON -> `observe_ticket_state(dict)`: the open-ticket gauge
  `tawasul_tickets_open{channel, kind, priority, sla_state}`;
* `tawasul.sla.outcomes` CloudEvents -> `observe_outcome(event)`: `tawasul_sla_outcomes_total`,
  counted once per outcome id (withdrawals under `outcome="breach_withdrawn"|"warning_withdrawn"`);
* `tawasul.kpis` CloudEvents -> `observe_kpi(event)`: satisfaction, service level, ASA, abandon
  ratio, calls waiting, walk-in waiting gauges;
* any of those CloudEvents -> `observe_event(event)` (dispatches on the type).

Labels stay bounded: channels, kinds, priorities and targets are the contract's closed sets;
windows, queues and centres are capped (`LabelLimits`), values beyond the cap are dropped
and counted in `dropped`. Each open ticket costs one small dict entry (its rank and label set
packed in one int, `_TicketMemory`); closed tickets and outcome ids are bounded LRU maps.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import Gauge
from sqlalchemy import Connection, Engine, select

from schemas import CHANNELS, KINDS, Event, InvalidEvent, KpiSnapshotData, SlaOutcomeData, parse_event
from schemas.values import PRIORITIES, SLA_TARGETS
from sinks.db.models import Ticket, TicketTarget
from sinks.db.records import OutcomeRecord, TicketState
from tawasul.domain.kpi_state import KpiStateError, state_rank
from tawasul.domain.kpi_state import sla_state_of as domain_sla_state
from tawasul.infra.metrics import Metrics

__all__ = [
    "ALL",
    "FIGURE_ABANDON",
    "FIGURE_ASA",
    "FIGURE_CALLS_WAITING",
    "FIGURE_SATISFACTION",
    "FIGURE_SERVICE_LEVEL",
    "FIGURE_WALK_IN_WAITING",
    "KPI_FIGURES",
    "SLA_STATES",
    "KpiFigure",
    "LabelLimits",
    "MetricsFeed",
    "MetricsFeedError",
    "TicketLabels",
    "open_ticket_states",
    "sla_state_of",
    "state_dict",
]

log = logging.getLogger(__name__)

ALL: Final = "all"
"""Label value of a KPI whose scope is everything (`scope == {}`)."""
SLA_STATES: Final = ("on_track", "at_risk", "breached", "none")
"""Values of the `sla_state` label of `tawasul_tickets_open`."""
OUTCOMES: Final = {
    "sla.warning": "warning",
    "sla.breached": "breached",
    "sla.met": "met",
    "sla.breach_withdrawn": "breach_withdrawn",
    "sla.warning_withdrawn": "warning_withdrawn",
}
"""Outcome type -> `outcome` label. A withdrawal is counted under its own label: the breaches that
stand are `breached - breach_withdrawn` (counters never go down)."""
_LABEL_VALUE: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class MetricsFeedError(ValueError):
    """A message handed to the feed is not what its topic carries."""


@dataclass(frozen=True)
class KpiFigure:
    """Where one KPI figure goes: a gauge of `Metrics`, keyed by one scope field."""

    gauge: str
    """Attribute name on `Metrics`."""
    scope_key: str
    """The scope field that becomes the gauge's first label (queue, channel, centre)."""
    windowed: bool = True
    """Whether the gauge has a `window` label."""
    count_gauge: str | None = None
    """A second gauge that receives the snapshot's `count` (e.g. survey responses)."""


FIGURE_SERVICE_LEVEL: Final = "calls.service_level"
FIGURE_ASA: Final = "calls.average_speed_of_answer_seconds"
FIGURE_ABANDON: Final = "calls.abandon_ratio"
FIGURE_CALLS_WAITING: Final = "calls.waiting"
FIGURE_WALK_IN_WAITING: Final = "visits.waiting"
FIGURE_SATISFACTION: Final = "surveys.satisfaction"

KPI_FIGURES: Final[Mapping[str, KpiFigure]] = {
    FIGURE_SERVICE_LEVEL: KpiFigure("service_level_ratio", "queue"),
    FIGURE_ASA: KpiFigure("asa_seconds", "queue"),
    FIGURE_ABANDON: KpiFigure("abandon_ratio", "queue"),
    FIGURE_CALLS_WAITING: KpiFigure("calls_waiting", "queue", windowed=False),
    FIGURE_WALK_IN_WAITING: KpiFigure("walk_in_waiting", "centre", windowed=False),
    FIGURE_SATISFACTION: KpiFigure("satisfaction_ratio", "channel", count_gauge="survey_responses"),
}
"""KPI `figure` name (as `tawasul.domain.kpi_state` publishes them) -> metric. Figures not listed here,
and scopes other than the one named (e.g. satisfaction per agent or per queue), are not exported."""


@dataclass(frozen=True)
class LabelLimits:
    """Caps that keep label cardinality and memory bounded."""

    windows: int = 12
    queues: int = 64
    centres: int = 32
    open_tickets: int = 5_000_000
    """Open tickets counted at most (about 200 bytes each, see docs/monitoring.md); a new open
    ticket beyond it is dropped and counted in `dropped`. No fixed cap below 2,000,000."""
    closed_tickets: int = 200_000
    """Closed tickets whose rank is remembered (an LRU), so a stale replay cannot reopen them."""
    outcome_ids: int = 200_000
    """Outcome ids remembered to count each outcome once."""


@dataclass(frozen=True)
class TicketLabels:
    """The label set one open ticket contributes to `tawasul_tickets_open`."""

    channel: str
    kind: str
    priority: str
    sla_state: str

    def values(self) -> tuple[str, str, str, str]:
        return (self.channel, self.kind, self.priority, self.sla_state)


def sla_state_of(state: Mapping[str, Any]) -> str:
    """The ticket's `sla_state` label, by the KPI processor's rule (`tawasul.domain.kpi_state`):
    `breached`, `at_risk` (a running or paused target warned), `on_track`, or `none` (no policy)."""
    try:
        return domain_sla_state(state)
    except KpiStateError as exc:
        raise MetricsFeedError(str(exc)) from exc


class _Lru(OrderedDict[str, Any]):
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


class _TicketMemory:
    """Open tickets (ticket id -> one int) and recently closed ones (an LRU of ranks).

    An open ticket's value packs its rank (`state_rank`: version, progress) and the index of its
    label set: `(version * 256 + progress) * slots + label index`, so the memory per open ticket
    is one dict entry, the id string and one int (measured in tests/unit/test_metrics_feed.py).
    """

    def __init__(self, closed_capacity: int) -> None:
        self.open: dict[str, int] = {}
        self.closed = _Lru(closed_capacity)  # ticket id -> packed rank
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
        closed_rank = self.closed.get(ticket_id)
        return None if closed_rank is None else (closed_rank, None)

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


class MetricsFeed:
    """Keeps the business gauges and counters of one `Metrics` in step with the pipeline."""

    def __init__(self, metrics: Metrics, limits: LabelLimits | None = None, *, zero_breaches: bool = True) -> None:
        """`zero_breaches` exports every (channel, kind, target) breach and breach-withdrawal counter
        at 0 from the start, so that `increase()` in the alert rules sees the very first of each."""
        self.metrics = metrics
        self.limits = limits or LabelLimits()
        self._tickets = _TicketMemory(self.limits.closed_tickets)
        self._outcomes = _Lru(self.limits.outcome_ids)  # outcome id -> None
        self._open: dict[tuple[str, str, str, str], int] = {}
        self._seen: dict[str, set[str]] = {"window": set(), "queue": set(), "centre": set()}
        self._capped: set[str] = set()
        self.dropped = 0
        """Messages or label values dropped (unknown values, caps reached)."""
        if zero_breaches:
            for channel in CHANNELS:
                for kind in KINDS:
                    for target in SLA_TARGETS:
                        metrics.sla_outcomes.labels("breached", channel, kind, target)
                        metrics.sla_outcomes.labels("breach_withdrawn", channel, kind, target)

    # -- tickets -----------------------------------------------------------------------
    def observe_ticket_state(self, state: Mapping[str, Any]) -> None:
        """Apply one `tawasul.tickets.state` value; one older than the last seen (`kpi_state.state_rank`) is ignored."""
        ticket_id = state.get("ticket_id")
        if not isinstance(ticket_id, str) or not ticket_id:
            raise MetricsFeedError("ticket state without ticket_id")
        try:
            rank = state_rank(state)
        except KpiStateError:
            rank = (0, 0)
        packed = self._tickets.pack_rank(rank)
        known = self._tickets.get(ticket_id)
        if known is not None and packed < known[0]:
            return
        labels = self._labels_of(state)
        previous: TicketLabels | None = known[1] if known is not None else None
        if previous is None and labels is not None and len(self._tickets.open) >= self.limits.open_tickets:
            self.dropped += 1
            if "open_tickets" not in self._capped:
                self._capped.add("open_tickets")
                log.warning(
                    "open-ticket cap reached, further tickets not counted", extra={"cap": self.limits.open_tickets}
                )
            return
        if previous != labels:
            if previous is not None:
                self._move(previous, -1)
            if labels is not None:
                self._move(labels, +1)
        self._tickets.put(ticket_id, packed, labels)

    def _labels_of(self, state: Mapping[str, Any]) -> TicketLabels | None:
        if state.get("status") != "open":
            return None
        channel, kind, priority = state.get("channel"), state.get("kind"), state.get("priority")
        if channel not in CHANNELS or kind not in KINDS or priority not in PRIORITIES:
            self.dropped += 1
            return None
        return TicketLabels(str(channel), str(kind), str(priority), sla_state_of(state))

    def _move(self, labels: TicketLabels, delta: int) -> None:
        key = labels.values()
        count = self._open.get(key, 0) + delta
        self._open[key] = count
        self.metrics.tickets_open.labels(*key).set(max(count, 0))

    def open_tickets(self) -> dict[tuple[str, str, str, str], int]:
        """Current open-ticket counts per (channel, kind, priority, sla_state)."""
        return {key: count for key, count in self._open.items() if count > 0}

    # -- SLA outcomes ------------------------------------------------------------------
    def observe_outcome(self, event: Event | OutcomeRecord | Mapping[str, Any]) -> bool:
        """Count one `sla.*` outcome; False when its id was already counted."""
        if isinstance(event, OutcomeRecord):
            record = event
        else:
            ev = _as_event(event)
            if ev.type not in OUTCOMES:
                raise MetricsFeedError(f"not an SLA outcome: {ev.type}")
            if not isinstance(ev.data, SlaOutcomeData):
                raise MetricsFeedError(f"unexpected data model for {ev.type}")
            record = OutcomeRecord.from_event(ev)
        if record.id in self._outcomes:
            self._outcomes.move_to_end(record.id)
            return False
        self._outcomes.put(record.id, None)
        self.metrics.sla_outcomes.labels(
            outcome=OUTCOMES[record.type], channel=record.channel, kind=record.kind, target=record.target
        ).inc()
        return True

    # -- KPI snapshots -----------------------------------------------------------------
    def observe_kpi(self, event: Event | Mapping[str, Any]) -> bool:
        """Set the gauge of one `kpi.snapshot`; False when the figure is not exported or dropped."""
        ev = _as_event(event)
        if ev.type != "kpi.snapshot":
            raise MetricsFeedError(f"not a KPI snapshot: {ev.type}")
        data = ev.data
        if not isinstance(data, KpiSnapshotData):
            raise MetricsFeedError("unexpected data model for kpi.snapshot")
        target = KPI_FIGURES.get(data.figure)
        if target is None:
            return False
        if not data.scope:
            scope_value: str | None = ALL
        elif set(data.scope) == {target.scope_key}:
            scope_value = data.scope[target.scope_key]
        else:
            return False  # another breakdown (per agent, per kind, ...): not exported
        first = self._bounded(target.scope_key, scope_value)
        if first is None:
            return False
        window = self._bounded("window", data.window) if target.windowed else ""
        if window is None:
            return False
        labels = (first, window) if target.windowed else (first,)
        self._set(getattr(self.metrics, target.gauge), labels, data.value)
        if target.count_gauge is not None and data.count is not None:
            self._set(getattr(self.metrics, target.count_gauge), labels, data.count)
        return True

    def _set(self, gauge: Gauge, labels: tuple[str, ...], value: float | int | None) -> None:
        """A null value (empty denominator) removes the series rather than exporting 0."""
        if value is None:
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
            return
        gauge.labels(*labels).set(float(value))

    def _bounded(self, key: str, value: object) -> str | None:
        """`value` as a label value of `key`, or None when unknown or over the cap."""
        if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
            self.dropped += 1
            return None
        if key == "channel":
            if value in CHANNELS or value == ALL:
                return value
            self.dropped += 1
            return None
        seen = self._seen[key]
        cap = {"window": self.limits.windows, "queue": self.limits.queues, "centre": self.limits.centres}[key]
        if value not in seen:
            if len(seen) >= cap:
                self.dropped += 1
                if key not in self._capped:
                    self._capped.add(key)
                    log.warning("label cap reached, further values dropped", extra={"label": key, "cap": cap})
                return None
            seen.add(value)
        return value

    # -- dispatch ----------------------------------------------------------------------
    def observe_event(self, event: Event | Mapping[str, Any]) -> bool:
        """Route an output CloudEvent (`sla.*`, `kpi.snapshot`); other types are ignored (False)."""
        ev = _as_event(event)
        if ev.type in OUTCOMES:
            return self.observe_outcome(ev)
        if ev.type == "kpi.snapshot":
            return self.observe_kpi(ev)
        return False

    def observe_record(self, record: object) -> bool:
        """Whatever the database sink decoded: an `Event`, an `OutcomeRecord`, a `TicketState` or a
        ticket-state dict.

        Input events (the sink's `EventRecord`) and anything else are ignored (False).
        """
        if isinstance(record, Event):
            return self.observe_event(record)
        if isinstance(record, OutcomeRecord):
            return self.observe_outcome(record)
        if isinstance(record, TicketState):
            self.observe_ticket_state(state_dict(record))
            return True
        if isinstance(record, Mapping) and "ticket_id" in record:
            self.observe_ticket_state(record)
            return True
        return False

    def seed_open_tickets(self, engine: Engine) -> int:
        """Load the open tickets the database holds (after a restart); returns how many."""
        states = open_ticket_states(engine)
        for state in states:
            self.observe_ticket_state(state)
        return len(states)


def state_dict(state: TicketState) -> dict[str, Any]:
    """A `TicketState` as the fields `observe_ticket_state` reads."""
    return {
        "ticket_id": state.ticket_id,
        "channel": state.channel,
        "kind": state.kind,
        "priority": state.priority,
        "status": state.status,
        "policy": state.policy,
        "version": state.version,
        "targets": {t.target: {"state": t.state, "warned": t.warned, "breached": t.breached} for t in state.targets},
    }


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
            TicketTarget.target,
            TicketTarget.state,
            TicketTarget.warned,
            TicketTarget.breached,
        )
        .select_from(Ticket)
        .outerjoin(TicketTarget, TicketTarget.ticket_id == Ticket.ticket_id)
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


def _as_event(event: Event | Mapping[str, Any]) -> Event:
    if isinstance(event, Event):
        return event
    try:
        return parse_event(dict(event))
    except InvalidEvent as exc:
        raise MetricsFeedError(str(exc)) from exc

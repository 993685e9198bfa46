"""Turn the pipeline's output messages into the Prometheus metrics of `tawasul.infra.metrics`.

`MetricsFeed` is fed by the sink with what it consumes:

* `tawasul.tickets.state` -> `observe_ticket_state(message)` (the typed
  `schemas.ticket_state.TicketStateMessage`, or its JSON object): the open-ticket gauge
  `tawasul_tickets_open{channel, kind, priority, sla_state}`;
* `tawasul.sla.outcomes` CloudEvents -> `observe_outcome(event)`: `tawasul_sla_outcomes_total`,
  counted once per outcome id (withdrawals under `outcome="breach_withdrawn"|"warning_withdrawn"`);
* `tawasul.kpis` CloudEvents -> `observe_kpi(event)`: satisfaction, service level, ASA, abandon
  ratio, calls waiting, walk-in waiting gauges;
* any of those CloudEvents -> `observe_event(event)` (dispatches on the type).

Label sets and caps live in `sinks.metrics_labels`, the open-ticket memory and the database's
open tickets in `sinks.metrics_tickets`; values beyond a cap are dropped and counted in `dropped`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import Engine

from schemas import CHANNELS, KINDS, Event, InvalidEvent, KpiSnapshotData, SlaOutcomeData, parse_event
from schemas.ticket_state import TicketStateMessage, state_as_dict
from schemas.values import PRIORITIES, SLA_TARGETS
from sinks.db.records import OutcomeRecord, TicketState
from sinks.metrics_labels import (
    ALL,
    FIGURE_ABANDON,
    FIGURE_ASA,
    FIGURE_CALLS_WAITING,
    FIGURE_SATISFACTION,
    FIGURE_SERVICE_LEVEL,
    FIGURE_WALK_IN_WAITING,
    KPI_FIGURES,
    LABEL_VALUE,
    OUTCOMES,
    SLA_STATES,
    KpiFigure,
    LabelLimits,
    MetricsFeedError,
    TicketLabels,
    sla_state_of,
)
from sinks.metrics_tickets import Lru, TicketMemory, open_ticket_states, state_dict, state_message
from tawasul.domain.kpi_state import KpiStateError, state_rank
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


class MetricsFeed:
    """Keeps the business gauges and counters of one `Metrics` in step with the pipeline."""

    def __init__(self, metrics: Metrics, limits: LabelLimits | None = None, *, zero_breaches: bool = True) -> None:
        """`zero_breaches` exports every (channel, kind, target) breach and breach-withdrawal counter
        at 0 from the start, so that `increase()` in the alert rules sees the very first of each."""
        self.metrics = metrics
        self.limits = limits or LabelLimits()
        self._tickets = TicketMemory(self.limits.closed_tickets)
        self._outcomes = Lru(self.limits.outcome_ids)  # outcome id -> None
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
    def observe_ticket_state(self, state: TicketStateMessage | Mapping[str, Any]) -> None:
        """Apply one `tawasul.tickets.state` message (typed, or a JSON object with at least the
        fields read here); one older than the last seen (`kpi_state.state_rank`) is ignored."""
        if isinstance(state, TicketStateMessage):
            # the KPI processor's rules (`kpi_state`) read the message's JSON form for now
            plain: Mapping[str, Any] = state_as_dict(state)
            self._observe(state.ticket_id, state.status, state.channel, state.kind, state.priority, plain)
            return
        ticket_id = state.get("ticket_id")
        if not isinstance(ticket_id, str) or not ticket_id:
            raise MetricsFeedError("ticket state without ticket_id")
        status, channel, kind, priority = (state.get(name) for name in ("status", "channel", "kind", "priority"))
        self._observe(ticket_id, status, channel, kind, priority, state)

    def _observe(
        self, ticket_id: str, status: object, channel: object, kind: object, priority: object, plain: Mapping[str, Any]
    ) -> None:
        try:
            rank = state_rank(plain)
        except KpiStateError:
            rank = (0, 0)
        packed = self._tickets.pack_rank(rank)
        known = self._tickets.get(ticket_id)
        if known is not None and packed < known[0]:
            return
        labels = self._labels_of(status, channel, kind, priority, plain)
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

    def _labels_of(
        self, status: object, channel: object, kind: object, priority: object, plain: Mapping[str, Any]
    ) -> TicketLabels | None:
        if status != "open":
            return None
        if channel not in CHANNELS or kind not in KINDS or priority not in PRIORITIES:
            self.dropped += 1
            return None
        return TicketLabels(str(channel), str(kind), str(priority), sla_state_of(plain))

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
        if not isinstance(value, str) or not LABEL_VALUE.fullmatch(value):
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
            self.observe_ticket_state(state_message(record))
            return True
        if isinstance(record, TicketStateMessage) or (isinstance(record, Mapping) and "ticket_id" in record):
            self.observe_ticket_state(record)
            return True
        return False

    def seed_open_tickets(self, engine: Engine) -> int:
        """Load the open tickets the database holds (after a restart); returns how many."""
        states = open_ticket_states(engine)
        for state in states:
            self.observe_ticket_state(state)
        return len(states)


def _as_event(event: Event | Mapping[str, Any]) -> Event:
    if isinstance(event, Event):
        return event
    try:
        return parse_event(dict(event))
    except InvalidEvent as exc:
        raise MetricsFeedError(str(exc)) from exc

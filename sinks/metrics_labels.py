"""Label sets of the business metrics: KPI figures, label caps, open-ticket labels, SLA states.

Labels stay bounded: channels, kinds, priorities and targets are the contract's closed sets;
windows, queues and centres are capped (`LabelLimits`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tawasul.domain.kpi_state import KpiStateError
from tawasul.domain.kpi_state import sla_state_of as domain_sla_state

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
LABEL_VALUE: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
"""What a free label value (window, queue, centre) may look like."""


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

"""Per agent and per team figures for supervisors, ranked so the one who needs help is on top.

Pure logic over rows a query layer loads (the wall display's `/supervisor`, `tawasul report
--by agent|team`): answered calls, survey responses and open tickets, each already attributed
to an agent and/or a team. Figures for a period `[start, end)`:

* calls answered (by `answered_at`) and their average handle time (`handle_seconds`: answered
  to ended plus wrap-up; calls without it do not count in the average);
* satisfaction: satisfied share of the survey responses submitted in the period, and their count;
* open tickets assigned now, of them at risk and breached (a "now" figure: the same for every period).

Calls answered, handle time and satisfaction are tallied by `ServiceTally`, which `tawasul report
--by agent|team` (`report_by`) uses too: one rule for these figures.

Ranking (`needs_help_key`): most breached tickets first, then most at risk, then the lowest
satisfaction below `satisfaction_target`, then the longest average handle time, then the name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from tawasul.domain import kpis

__all__ = [
    "UNASSIGNED",
    "AnsweredCall",
    "Figures",
    "OpenTicket",
    "ServiceTally",
    "SurveyResponse",
    "figures_by",
    "needs_help_key",
]

By = Literal["agent", "team"]
UNASSIGNED: Final = "unassigned"
"""The team of an agent whose team is not known (no `ticket.assigned` names both)."""
TICKET_STATES: Final = ("on_track", "at_risk", "breached", "none")


@dataclass(frozen=True, slots=True)
class AnsweredCall:
    agent: str
    team: str | None
    answered_at: datetime
    handle_seconds: float | None


@dataclass(frozen=True, slots=True)
class SurveyResponse:
    """One survey response attributed to the agent and/or team that served the customer."""

    agent: str | None
    team: str | None
    time: datetime
    satisfied: bool


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """An open ticket's assignee and SLA state (`on_track`, `at_risk`, `breached` or `none`)."""

    agent: str | None
    team: str | None
    sla_state: str


@dataclass(frozen=True, slots=True)
class Figures:
    """One agent's or team's figures for a period (`team` is the agent's team; None for a team row)."""

    name: str
    team: str | None
    calls_answered: int
    average_handle_seconds: float | None
    satisfaction: float | None
    responses: int
    open_tickets: int
    at_risk: int
    breached: int
    needs_help: bool

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "team": self.team,
            "calls_answered": self.calls_answered,
            "average_handle_seconds": self.average_handle_seconds,
            "satisfaction": self.satisfaction,
            "responses": self.responses,
            "open_tickets": self.open_tickets,
            "at_risk": self.at_risk,
            "breached": self.breached,
            "needs_help": self.needs_help,
        }


@dataclass(slots=True)
class ServiceTally:
    """Calls answered, their handle time and survey answers of one agent or team: the one rule
    for these figures, shared by `/supervisor` and `tawasul report --by agent|team`."""

    calls_answered: int = 0
    handled: int = 0
    handle_total: float = 0.0
    responses: int = 0
    satisfied: int = 0

    def add_call(self, handle_seconds: float | None) -> None:
        """One answered call; `handle_seconds` None (not ended) leaves it out of the average."""
        self.calls_answered += 1
        if handle_seconds is not None:
            self.handled += 1
            self.handle_total += handle_seconds

    def add_survey(self, satisfied: bool) -> None:
        self.responses += 1
        self.satisfied += satisfied

    @property
    def average_handle_seconds(self) -> float | None:
        return kpis.average_handle_seconds(self.handle_total, self.handled)

    @property
    def satisfaction(self) -> float | None:
        return kpis.satisfaction(self.satisfied, self.responses)


@dataclass
class _Tally:
    team: str | None = None
    service: ServiceTally = field(default_factory=ServiceTally)
    open_tickets: int = 0
    at_risk: int = 0
    breached: int = 0


def figures_by(
    by: By,
    start: datetime,
    end: datetime,
    calls: Iterable[AnsweredCall],
    surveys: Iterable[SurveyResponse],
    open_tickets: Iterable[OpenTicket],
    *,
    satisfaction_target: float = 0.9,
) -> list[Figures]:
    """Figures per agent (`by="agent"`) or team over `[start, end)`, ranked by `needs_help_key`.

    Rows without an agent (for `agent`) are left out; rows without a team count under `UNASSIGNED`.
    An agent's team is the team their rows name (the latest non-empty one seen).
    """
    if by not in ("agent", "team"):
        raise ValueError(f"by must be 'agent' or 'team', not {by!r}")
    tallies: dict[str, _Tally] = {}

    def tally(agent: str | None, team: str | None) -> _Tally | None:
        if by == "agent":
            if not agent:
                return None
            entry = tallies.setdefault(agent, _Tally())
            if team:
                entry.team = team
            return entry
        return tallies.setdefault(team or UNASSIGNED, _Tally())

    for call in calls:
        if start <= call.answered_at < end and (entry := tally(call.agent, call.team)) is not None:
            entry.service.add_call(call.handle_seconds)
    for survey in surveys:
        if start <= survey.time < end and (entry := tally(survey.agent, survey.team)) is not None:
            entry.service.add_survey(survey.satisfied)
    for ticket in open_tickets:
        if ticket.sla_state not in TICKET_STATES:
            raise ValueError(f"sla_state must be one of {', '.join(TICKET_STATES)}, not {ticket.sla_state!r}")
        if (entry := tally(ticket.agent, ticket.team)) is not None:
            entry.open_tickets += 1
            entry.at_risk += ticket.sla_state == "at_risk"
            entry.breached += ticket.sla_state == "breached"
    result = [_figures(name, entry, by, satisfaction_target) for name, entry in tallies.items()]
    return sorted(result, key=lambda f: needs_help_key(f, satisfaction_target))


def _figures(name: str, entry: _Tally, by: By, target: float) -> Figures:
    service = entry.service
    satisfaction = service.satisfaction
    return Figures(
        name=name,
        team=(entry.team or UNASSIGNED) if by == "agent" else None,
        calls_answered=service.calls_answered,
        average_handle_seconds=service.average_handle_seconds,
        satisfaction=satisfaction,
        responses=service.responses,
        open_tickets=entry.open_tickets,
        at_risk=entry.at_risk,
        breached=entry.breached,
        needs_help=entry.breached > 0 or entry.at_risk > 0 or (satisfaction is not None and satisfaction < target),
    )


def needs_help_key(figures: Figures, satisfaction_target: float = 0.9) -> tuple[int, int, float, float, str]:
    """Sort key: breached, at risk, satisfaction shortfall below target, handle time (all worst
    first), then the name."""
    shortfall = 0.0 if figures.satisfaction is None else max(0.0, satisfaction_target - figures.satisfaction)
    return (-figures.breached, -figures.at_risk, -shortfall, -(figures.average_handle_seconds or 0.0), figures.name)

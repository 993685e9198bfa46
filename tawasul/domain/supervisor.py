"""Per agent and per team figures for supervisors, ranked so the one who needs help is on top.

Pure logic over rows a query layer loads (the wall display's `/supervisor`, `tawasul report
--by agent|team`): answered calls, survey responses and open tickets, each already attributed
to an agent and/or a team. Figures for a period `[start, end)`:

* calls answered (by `answered_at`) and their average handle time (`handle_seconds`: answered
  to ended plus wrap-up; calls without it do not count in the average);
* satisfaction: satisfied share of the survey responses submitted in the period, and their count;
* open tickets assigned now, of them at risk and breached (a "now" figure: the same for every period).

Ranking (`needs_help_key`): most breached tickets first, then most at risk, then the lowest
satisfaction below `satisfaction_target`, then the longest average handle time, then the name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

__all__ = ["UNASSIGNED", "AnsweredCall", "Figures", "OpenTicket", "SurveyResponse", "figures_by", "needs_help_key"]

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
        return {"name": self.name, "team": self.team, "calls_answered": self.calls_answered,
                "average_handle_seconds": self.average_handle_seconds, "satisfaction": self.satisfaction,
                "responses": self.responses, "open_tickets": self.open_tickets, "at_risk": self.at_risk,
                "breached": self.breached, "needs_help": self.needs_help}


@dataclass
class _Tally:
    team: str | None = None
    calls: int = 0
    handled: int = 0
    handle_total: float = 0.0
    responses: int = 0
    satisfied: int = 0
    open_tickets: int = 0
    at_risk: int = 0
    breached: int = 0


def figures_by(by: By, start: datetime, end: datetime, calls: Iterable[AnsweredCall],
               surveys: Iterable[SurveyResponse], open_tickets: Iterable[OpenTicket], *,
               satisfaction_target: float = 0.9) -> list[Figures]:
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
            entry.calls += 1
            if call.handle_seconds is not None:
                entry.handled += 1
                entry.handle_total += call.handle_seconds
    for survey in surveys:
        if start <= survey.time < end and (entry := tally(survey.agent, survey.team)) is not None:
            entry.responses += 1
            entry.satisfied += survey.satisfied
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
    satisfaction = round(entry.satisfied / entry.responses, 4) if entry.responses else None
    average = round(entry.handle_total / entry.handled, 4) if entry.handled else None
    return Figures(name=name, team=(entry.team or UNASSIGNED) if by == "agent" else None,
                   calls_answered=entry.calls, average_handle_seconds=average, satisfaction=satisfaction,
                   responses=entry.responses, open_tickets=entry.open_tickets, at_risk=entry.at_risk,
                   breached=entry.breached,
                   needs_help=entry.breached > 0 or entry.at_risk > 0
                   or (satisfaction is not None and satisfaction < target))


def needs_help_key(figures: Figures, satisfaction_target: float = 0.9) -> Sequence[object]:
    """Sort key: breached, at risk, satisfaction shortfall below target, handle time (all worst
    first), then the name."""
    shortfall = 0.0 if figures.satisfaction is None else max(0.0, satisfaction_target - figures.satisfaction)
    return (-figures.breached, -figures.at_risk, -shortfall, -(figures.average_handle_seconds or 0.0), figures.name)

"""Rows for the supervisor view (`/api/supervisor`), loaded from the sink's tables and handed to
`tawasul.domain.supervisor`.

* answered calls since the start of the week (`calls.agent`, `answered_at`, `handle_seconds`;
  a call abandoned before its answer is not answered, as in the report);
* survey responses since the start of the week, attributed through the call they are about
  (`surveys.subject` = `calls.call_id`) or the ticket's latest `ticket.assigned` event;
* open tickets (`tickets` + `ticket_targets`, SLA state by the gauge's rule) with their latest
  `ticket.assigned` (`events` of that type: `data.team`, `data.agent`).

An agent's team is the team of the latest assignment that names both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, or_, select
from sqlalchemy.exc import SQLAlchemyError

from sinks.db.models import Call, StoredEvent, Survey, Ticket
from sinks.metrics_feed import open_ticket_states, sla_state_of
from sinks.wallboard.config import WallboardConfig, WallboardError
from sinks.wallboard.queries import ANSWERED_CALL
from tawasul.domain.supervisor import AnsweredCall, OpenTicket, SurveyResponse, figures_by

__all__ = ["read_supervisor", "supervisor_rows"]

Assignment = tuple[str | None, str | None]
"""(team, agent) of a ticket's latest `ticket.assigned`."""


def read_supervisor(engine: Engine, config: WallboardConfig, now: datetime) -> dict[str, Any]:
    """Per team and agent, today and this week (from Monday 00:00 local), as JSON."""
    local = now.astimezone(config.zone)
    day_start = datetime.combine(local.date(), time(0), tzinfo=config.zone)
    week_start = day_start - timedelta(days=local.weekday())
    try:
        with engine.connect() as connection, connection.begin():
            calls, surveys, tickets = supervisor_rows(connection, week_start, now)
    except SQLAlchemyError as exc:
        raise WallboardError(f"cannot read the supervisor data: {type(exc).__name__}") from exc
    target = min(config.targets.satisfaction.values(), default=0.9)
    periods = {"today": day_start, "week": week_start}
    end = now + timedelta(microseconds=1)
    return {
        "generated_at": local.isoformat(),
        "timezone": config.timezone,
        "satisfaction_target": target,
        "periods": {name: {"from": start.isoformat(), "to": local.isoformat()} for name, start in periods.items()},
        **{
            f"{by}s": {
                name: [
                    f.to_json() for f in figures_by(by, start, end, calls, surveys, tickets, satisfaction_target=target)
                ]
                for name, start in periods.items()
            }
            for by in ("team", "agent")
        },
    }


def supervisor_rows(
    connection: Connection, since: datetime, now: datetime
) -> tuple[list[AnsweredCall], list[SurveyResponse], list[OpenTicket]]:
    """Answered calls and survey responses in `[since, now]`, and the tickets open now, each
    attributed to its agent and team: the rows `tawasul.domain.supervisor.figures_by` takes."""
    open_ids = select(Ticket.ticket_id).where(Ticket.status == "open")
    surveyed = select(Survey.subject).where(Survey.time >= since, Survey.time <= now)
    assignments, teams = _assignments(
        connection.execute(
            select(StoredEvent.subject, StoredEvent.time, StoredEvent.payload)
            .where(
                StoredEvent.type == "ticket.assigned",
                or_(StoredEvent.subject.in_(open_ids), StoredEvent.subject.in_(surveyed)),
            )
            .order_by(StoredEvent.time, StoredEvent.id)
        )
    )
    calls = [
        AnsweredCall(agent=agent, team=teams.get(agent), answered_at=answered, handle_seconds=handle)
        for agent, answered, handle in connection.execute(
            select(Call.agent, Call.answered_at, Call.handle_seconds).where(
                Call.answered_at >= since, Call.answered_at <= now, Call.agent.is_not(None), ANSWERED_CALL
            )
        )
    ]
    surveys = []
    for subject, at, satisfied, call_agent in connection.execute(
        select(Survey.subject, Survey.time, Survey.satisfied, Call.agent)
        .outerjoin(Call, Call.call_id == Survey.subject)
        .where(Survey.time >= since, Survey.time <= now)
    ):
        team, agent = assignments.get(subject, (None, None))
        agent = call_agent or agent
        surveys.append(
            SurveyResponse(agent=agent, team=teams.get(agent or "") or team, time=at, satisfied=bool(satisfied))
        )
    tickets = []
    for state in open_ticket_states(connection):
        team, agent = assignments.get(state["ticket_id"], (None, None))
        tickets.append(OpenTicket(agent=agent, team=team or teams.get(agent or ""), sla_state=sla_state_of(state)))
    return calls, surveys, tickets


def _assignments(rows: Iterable[Any]) -> tuple[dict[str, Assignment], dict[str, str]]:
    """The latest assignment of each ticket, and each agent's team (the latest assignment naming
    both); rows in time order."""
    latest: dict[str, Assignment] = {}
    teams: dict[str, str] = {}
    for subject, _at, payload in rows:
        try:
            data = json.loads(payload).get("data") or {}
        except (json.JSONDecodeError, AttributeError):
            continue
        team, agent = data.get("team") or None, data.get("agent") or None
        latest[subject] = (team, agent)
        if team and agent:
            teams[agent] = team
    return latest, teams

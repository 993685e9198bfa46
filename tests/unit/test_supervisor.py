"""Supervisor figures (`tawasul.domain.supervisor`): per agent and team over a period, ranked so
the one who needs help is on top."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tawasul.domain.supervisor import UNASSIGNED, AnsweredCall, OpenTicket, SurveyResponse, figures_by

START = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
END = START + timedelta(days=1)
IN = START + timedelta(hours=5)
BEFORE = START - timedelta(minutes=1)

CALLS = [
    AnsweredCall("a-1", "north", IN, 300.0),
    AnsweredCall("a-1", "north", IN, 500.0),
    AnsweredCall("a-1", "north", IN, None),  # no end yet: counted, not averaged
    AnsweredCall("a-2", "north", IN, 200.0),
    AnsweredCall("a-3", None, IN, 100.0),
    AnsweredCall("a-2", "north", BEFORE, 9999.0),  # outside the period
    AnsweredCall("a-2", "north", END, 9999.0),  # the end is exclusive
]
SURVEYS = [
    SurveyResponse("a-1", "north", IN, True),
    SurveyResponse("a-1", "north", IN, True),
    SurveyResponse("a-2", "north", IN, True),
    SurveyResponse("a-2", "north", IN, False),
    SurveyResponse(None, "south", IN, False),
    SurveyResponse("a-2", "north", BEFORE, False),
]
TICKETS = [
    OpenTicket("a-1", "north", "on_track"),
    OpenTicket("a-3", "south", "breached"),
    OpenTicket("a-3", "south", "at_risk"),
    OpenTicket(None, "south", "at_risk"),
    OpenTicket(None, None, "none"),
]


def test_agents_figures_and_ranking() -> None:
    agents = {f.name: f for f in figures_by("agent", START, END, CALLS, SURVEYS, TICKETS)}
    ranked = [f.name for f in figures_by("agent", START, END, CALLS, SURVEYS, TICKETS)]
    assert ranked == ["a-3", "a-2", "a-1"]  # breached first; then satisfaction below target
    a1 = agents["a-1"]
    assert (a1.calls_answered, a1.average_handle_seconds, a1.satisfaction, a1.responses) == (3, 400.0, 1.0, 2)
    assert (a1.open_tickets, a1.at_risk, a1.breached, a1.needs_help, a1.team) == (1, 0, 0, False, "north")
    a2 = agents["a-2"]
    assert (a2.calls_answered, a2.average_handle_seconds, a2.satisfaction, a2.needs_help) == (1, 200.0, 0.5, True)
    a3 = agents["a-3"]
    assert (a3.team, a3.open_tickets, a3.at_risk, a3.breached, a3.satisfaction) == ("south", 2, 1, 1, None)


def test_teams_figures() -> None:
    teams = figures_by("team", START, END, CALLS, SURVEYS, TICKETS)
    assert [f.name for f in teams] == ["south", "north", UNASSIGNED]  # at risk, then satisfaction 75 %
    south = teams[0]
    assert (south.open_tickets, south.at_risk, south.breached, south.responses, south.satisfaction) == (3, 2, 1, 1, 0.0)
    north = teams[1]
    assert (north.calls_answered, north.average_handle_seconds, north.responses, north.satisfaction) == (
        4,
        333.3333,
        4,
        0.75,
    )
    unassigned = teams[2]
    assert (unassigned.calls_answered, unassigned.open_tickets) == (1, 1)  # a-3's call had no team
    assert north.to_json()["average_handle_seconds"] == 333.3333


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="by must be"):
        figures_by("queue", START, END, [], [], [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sla_state must be one of"):
        figures_by("team", START, END, [], [], [OpenTicket("a", "b", "late")])

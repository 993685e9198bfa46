"""The report per agent and per team: a hand-computed Monday of calls, tickets and surveys."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas import Event, new_event
from tawasul.domain.policies import load_policies_text
from tawasul.domain.report_by import build_report_by
from tawasul.domain.report_result import ReportBy

DUBAI = ZoneInfo("Asia/Dubai")
BOOK = load_policies_text("""
calendars: {always: {always_open: true}}
policies: [{name: all, calendar: always, first_response: 1h, resolution: 4h}]
""")
START, END = datetime(2026, 1, 5, tzinfo=DUBAI), datetime(2026, 1, 6, tzinfo=DUBAI)
OPENED = {"channel": "crm", "kind": "complaint", "category": "fees", "priority": "normal"}


def at(h: int, m: int = 0, s: int = 0, day: int = 5) -> datetime:
    return datetime(2026, 1, day, h, m, s, tzinfo=DUBAI)


def scenario() -> list[Event]:
    n = iter(range(1000))

    def e(kind: str, subject: str, when: datetime, data: dict[str, object] | None = None) -> Event:
        return new_event(kind, subject, when, data or {}, "/tests/by", id=f"by-{next(n)}")

    def survey(subject: str, when: datetime, score: int) -> Event:
        return e("survey.submitted", subject, when, {"channel": "call", "score": score})

    return [
        e("call.offered", "C1", at(9), {"queue": "general"}),
        e("call.answered", "C1", at(9, 0, 10), {"queue": "general", "agent": "a-1"}),
        e("call.ended", "C1", at(9, 5, 10), {"wrap_up_seconds": 20}),  # 300 s + 20 s
        e("call.offered", "C2", at(9, 10), {"queue": "zakat"}),
        e("call.answered", "C2", at(9, 10, 30), {"queue": "zakat", "agent": "a-1"}),
        e("call.ended", "C2", at(9, 12, 30)),  # 120 s
        e("call.offered", "C3", at(9, 20), {"queue": "general"}),
        e("call.answered", "C3", at(9, 20, 5), {"queue": "general", "agent": "a-2"}),  # not ended
        e("call.offered", "C4", at(9, 30), {"queue": "general"}),
        e("call.abandoned", "C4", at(9, 30, 40), {"queue": "general"}),
        e("call.offered", "C5", at(23, day=4), {"queue": "general"}),  # the day before
        e("call.answered", "C5", at(23, 0, 5, day=4), {"queue": "general", "agent": "a-1"}),
        # T1: reassigned to s-2, both targets met
        e("ticket.opened", "T1", at(10), OPENED),
        e("ticket.assigned", "T1", at(10, 5), {"team": "complaints", "agent": "s-1"}),
        e("ticket.acknowledged", "T1", at(10, 30)),
        e("ticket.assigned", "T1", at(11), {"team": "complaints", "agent": "s-2"}),
        e("ticket.resolved", "T1", at(12)),
        # T2: s-1, both targets breached
        e("ticket.opened", "T2", at(10), OPENED),
        e("ticket.assigned", "T2", at(10, 1), {"team": "maintenance", "agent": "s-1"}),
        e("ticket.acknowledged", "T2", at(12)),
        e("ticket.resolved", "T2", at(16)),
        # T3: never assigned, closed at once
        e("ticket.opened", "T3", at(10), OPENED),
        e("ticket.closed", "T3", at(10, 20)),
        # T4: s-1; an assignment after the closing is ignored
        e("ticket.opened", "T4", at(10), OPENED),
        e("ticket.assigned", "T4", at(10, 2), {"team": "maintenance", "agent": "s-1"}),
        e("ticket.closed", "T4", at(10, 10)),
        e("ticket.assigned", "T4", at(10, 15), {"team": "complaints", "agent": "s-2"}),
        # T5: assigned only after the period's end
        e("ticket.opened", "T5", at(23), OPENED),
        e("ticket.assigned", "T5", at(1, day=6), {"team": "complaints", "agent": "s-2"}),
        survey("C1", at(9, 6), 5),
        survey("C3", at(9, 30), 2),
        survey("T2", at(17), 1),
        survey("T1", at(13), 4),
        survey("X-unknown", at(13), 5),
        survey("C1", at(9, day=7), 1),
    ]


def target(met: int, breached: int) -> dict[str, object]:
    return {"met": met, "breached": breached, "compliance": None if met + breached == 0 else met / (met + breached)}


def group(
    by: str,
    key: str | None,
    calls: int = 0,
    aht: float | None = None,
    tickets: int = 0,
    fr: tuple[int, int] = (0, 0),
    res: tuple[int, int] = (0, 0),
    surveys: int = 0,
    satisfied: int = 0,
) -> dict[str, object]:
    return {
        by: key,
        "calls_answered": calls,
        "average_handle_seconds": aht,
        "tickets_assigned": tickets,
        "first_response": target(*fr),
        "resolution": target(*res),
        "surveys": surveys,
        "satisfied": satisfied,
        "satisfaction": None if surveys == 0 else satisfied / surveys,
    }


def test_per_agent() -> None:
    result = build_report_by(scenario(), START, END, BOOK, by="agent").to_json()
    assert result["by"] == "agent" and result["period"]["from"] == "2026-01-05T00:00:00+04:00"
    assert result["groups"] == [
        group("agent", "a-1", calls=2, aht=220.0, surveys=1, satisfied=1),
        group("agent", "a-2", calls=1, surveys=1, satisfied=0),
        group("agent", "s-1", tickets=2, fr=(1, 1), res=(1, 1), surveys=1, satisfied=0),
        group("agent", "s-2", tickets=1, fr=(1, 0), res=(1, 0), surveys=1, satisfied=1),
        group("agent", None, tickets=2, fr=(1, 0), res=(1, 0)),  # T3, and T5 (assigned later)
    ]


def test_per_team() -> None:
    typed = build_report_by(scenario(), START, END, BOOK, by="team")
    result = typed.to_json()
    assert ReportBy.from_json(result) == typed
    assert result["groups"] == [
        group("team", "complaints", tickets=1, fr=(1, 0), res=(1, 0), surveys=1, satisfied=1),
        group("team", "general", calls=2, aht=320.0, surveys=2, satisfied=1),
        group("team", "maintenance", tickets=2, fr=(1, 1), res=(1, 1), surveys=1, satisfied=0),
        group("team", "zakat", calls=1, aht=120.0),
        group("team", None, tickets=2, fr=(1, 0), res=(1, 0)),
    ]


def test_order_and_duplicates_do_not_matter() -> None:
    events = scenario()
    expected = build_report_by(events, START, END, BOOK, by="agent")
    rng = random.Random(3)
    for _ in range(5):
        shuffled = events + rng.sample(events, 10)
        rng.shuffle(shuffled)
        assert build_report_by(shuffled, START, END, BOOK, by="agent") == expected
    # a book per ticket: T2 judged with a lenient book is met
    lenient = load_policies_text(BOOK_TEXT_LENIENT)
    per_ticket = build_report_by(events, START, END, lambda t: lenient if t == "T2" else BOOK, by="agent").to_json()
    s1 = next(g for g in per_ticket["groups"] if g["agent"] == "s-1")
    assert (s1["resolution"]["met"], s1["resolution"]["breached"]) == (2, 0)
    with pytest.raises(ValueError, match="by must be one of agent, team"):
        build_report_by(events, START, END, BOOK, by="queue")  # type: ignore[arg-type]
    assert build_report_by([], START, START + timedelta(hours=1), BOOK, by="team").groups == ()


BOOK_TEXT_LENIENT = """
calendars: {always: {always_open: true}}
policies: [{name: lenient, calendar: always, first_response: 8h, resolution: 40h}]
"""

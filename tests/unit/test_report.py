"""The period report on a hand-built day whose whole report is computed by hand, plus properties."""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.simulator import Params, iter_events, parse_when
from schemas import Event, new_event, parse_event
from sinks.report_render import RenderError, render_markdown
from tawasul.domain import sla
from tawasul.domain.period import Period, PeriodError, parse_instant, parse_period, rfc3339
from tawasul.domain.policies import PolicyBook, default_policy_path, load_policies, load_policies_text
from tawasul.domain.report import build_report, ticket_mark, ticket_sla_of
from tawasul.domain.report_result import Report

DUBAI = timezone(timedelta(hours=4))
START = datetime(2025, 3, 2, tzinfo=DUBAI)
END = datetime(2025, 3, 3, tzinfo=DUBAI)

BOOK_TEXT = """
calendars:
  always: {timezone: Asia/Dubai, always_open: true}
policies:
  - name: crm
    match: {channel: crm}
    calendar: always
    first_response: 1h
    resolution: 4h
  - name: complaints
    match: {kind: complaint}
    calendar: always
    first_response: 2h
    resolution: 8h
"""


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return load_policies_text(BOOK_TEXT)


def at(text: str) -> str:
    """`HH:MM[:SS]` on the report day, or a full date-time, in +04:00."""
    if len(text) == 5:
        text += ":00"
    return f"2025-03-02T{text}+04:00" if len(text) == 8 else f"{text}+04:00"


class Day:
    """Builds the scenario's events with deterministic ids."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._n = 0

    def add(self, type_: str, subject: str, time: str, **data: Any) -> Event:
        self._n += 1
        event = new_event(type_, subject, at(time), data, "/tests/report", id=f"{subject}-{self._n}")
        self.events.append(event)
        return event

    def again(self, event: Event) -> None:
        """The same event delivered a second time."""
        self.events.append(event)

    def ticket(self, subject: str, time: str, channel: str, kind: str, category: str) -> None:
        self.add("ticket.opened", subject, time, channel=channel, kind=kind, category=category, priority="normal")

    def survey(self, subject: str, time: str, score: int, scale: int = 5, channel: str = "crm") -> Event:
        return self.add("survey.submitted", subject, time, channel=channel, score=score, scale=scale)


def scenario() -> list[Event]:
    d = Day()
    # calls
    d.add("call.offered", "C1", "09:00:00", queue="main")
    d.again(d.add("call.answered", "C1", "09:00:20", queue="main", agent="a1"))  # exactly at the threshold
    d.add("call.ended", "C1", "09:05:20", wrap_up_seconds=30)  # handle 300 + 30
    d.add("call.offered", "C2", "09:10:00", queue="main")
    d.add("call.answered", "C2", "09:10:45", queue="main", agent="a2")  # 45 s: late
    d.add("call.ended", "C2", "09:12:45")  # handle 120
    d.add("call.offered", "C3", "09:20:00", queue="main")
    d.add("call.abandoned", "C3", "09:20:03", queue="main")  # short abandon, counted
    d.add("call.offered", "C4", "23:59:50", queue="main")
    d.add("call.answered", "C4", "2025-03-03T00:00:10", queue="main", agent="a1")  # after `to`: still waiting
    d.add("call.offered", "C5", "2025-03-01T23:59:00", queue="main")  # previous period
    d.add("call.answered", "C5", "00:00:30", queue="main", agent="a1")
    d.add("call.offered", "C6", "10:00:00", queue="main")
    d.add("call.answered", "C6", "10:00:05", queue="main", agent="a2")  # not ended yet
    d.add("call.offered", "C7", "11:00:00", queue="main")
    d.add("call.answered", "C7", "11:00:10", queue="main", agent="a2")
    d.add("call.ended", "C7", "11:10:10", wrap_up_seconds=0)  # handle 600
    d.survey("C1", "09:30", 5, channel="call")
    d.survey("C5", "00:10", 2, scale=3, channel="call")  # a call of the previous period: counts
    d.survey("C1", "2025-03-03T01:00:00", 1, channel="call")  # after `to`: ignored
    # tickets (calendar open around the clock)
    d.ticket("T1", "08:00", "crm", "request", "crm.permit")
    d.again(d.add("ticket.acknowledged", "T1", "08:30"))
    d.add("ticket.resolved", "T1", "11:00")
    d.ticket("T2", "09:00", "crm", "request", "crm.permit")
    d.add("ticket.acknowledged", "T2", "10:30")
    d.add("ticket.resolved", "T2", "15:00")
    d.ticket("T3", "10:00", "complaints_platform", "complaint", "complaint.staff")
    d.add("ticket.paused", "T3", "10:30", reason="waiting_on_customer")
    d.add("ticket.resumed", "T3", "20:00")
    d.ticket("T4", "22:00", "crm", "request", "crm.certificate")
    d.ticket("T5", "12:00", "crm", "request", "crm.permit")
    d.add("ticket.paused", "T5", "12:30", reason="waiting_on_customer")
    d.ticket("T6", "2025-03-01T10:00:00", "app", "request", "app.account")  # previous period
    d.add("ticket.resolved", "T6", "10:00")
    d.ticket("T7", "08:00", "email", "complaint", "complaint.delay")
    d.add("ticket.acknowledged", "T7", "09:00")
    d.add("ticket.resolved", "T7", "12:00")
    d.add("ticket.reopened", "T7", "13:00")
    d.add("ticket.resolved", "T7", "18:00")
    d.ticket("T8", "14:00", "web", "suggestion", "suggestion.digital")  # no policy
    d.add("ticket.resolved", "T8", "15:00")
    d.ticket("T9", "16:00", "crm", "request", "crm.certificate")
    d.add("ticket.acknowledged", "T9", "16:20")
    d.add("ticket.resolved", "T9", "17:00")
    d.add("ticket.reopened", "T9", "18:00")
    d.ticket("T10", "2025-03-03T01:00:00", "crm", "request", "crm.permit")  # after `to`
    d.ticket("T11", "07:00", "crm", "inquiry", "inquiry.general")
    d.add("ticket.closed", "T11", "07:30")
    d.add("ticket.reopened", "T11", "08:00")  # after closing: ignored
    d.survey("T1", "12:00", 4)
    d.survey("T6", "11:00", 5, channel="app")  # ticket of the previous period: counts, channel app
    d.survey("T8", "16:00", 3, scale=3, channel="web")
    d.survey("T3", "13:00", 3, channel="complaints_platform")
    d.survey("T10", "23:00", 5)  # its ticket opens after `to`: unknown at `to`
    d.survey("NOPE-1", "10:00", 5)  # unknown subject
    d.survey("NOPE-2", "2025-03-01T10:00:00", 5)  # before the period: not counted anywhere
    # walk-in visits
    d.add("visit.checked_in", "V1", "09:00", centre="c1", service="s1")
    d.add("visit.called", "V1", "09:05", centre="c1", counter="k1")  # wait 300
    d.add("visit.completed", "V1", "09:15", centre="c1")
    d.add("visit.checked_in", "V2", "09:10", centre="c1", service="s1")
    d.add("visit.called", "V2", "09:11", centre="c1", counter="k2")  # wait 60
    d.add("visit.no_show", "V2", "09:13", centre="c1")
    d.add("visit.checked_in", "V3", "23:50", centre="c1", service="s2")  # still waiting
    d.add("visit.checked_in", "V4", "2025-03-01T16:00:00", centre="c1", service="s1")  # previous period
    d.add("visit.called", "V4", "09:00", centre="c1", counter="k1")
    d.add("visit.checked_in", "V5", "12:00", centre="c2", service="s1")
    d.add("visit.called", "V5", "12:02", centre="c2", counter="k1")  # wait 120
    d.add("visit.completed", "V5", "2025-03-03T00:05:00", centre="c2")  # after `to`
    d.again(d.survey("V1", "09:30", 5, channel="walk_in"))
    d.survey("V4", "10:00", 4, channel="walk_in")
    d.survey("V2", "10:00", 2, channel="walk_in")
    return d.events


def targets(met: int, breached: int, compliance: float | None) -> dict[str, Any]:
    return {"met": met, "breached": breached, "compliance": compliance}


def group(
    opened: int,
    resolved: int,
    fr: dict[str, Any],
    res: dict[str, Any],
    surveys: int,
    satisfied: int,
    satisfaction: float | None,
) -> dict[str, Any]:
    return {
        "opened": opened,
        "resolved": resolved,
        "first_response": fr,
        "resolution": res,
        "surveys": surveys,
        "satisfied": satisfied,
        "satisfaction": satisfaction,
    }


NONE = targets(0, 0, None)
EXPECTED: dict[str, Any] = {
    "period": {"from": "2025-03-02T00:00:00+04:00", "to": "2025-03-03T00:00:00+04:00"},
    "calls": {
        "offered": 6,
        "answered": 4,
        "abandoned": 1,
        "answered_within_threshold": 3,
        "service_level": 0.6,
        "threshold_seconds": 20,
        "average_speed_of_answer_seconds": 20.0,  # (20 + 45 + 5 + 10) / 4
        "average_handle_seconds": 350.0,  # (330 + 120 + 600) / 3
        "abandon_ratio": 0.2,
        "surveys": 2,
        "satisfied": 1,
        "satisfaction": 0.5,
    },
    "tickets": {
        **group(9, 5, targets(4, 3, 0.5714), targets(2, 3, 0.4), 4, 3, 0.75),
        "by_channel": {
            "app": group(0, 0, NONE, NONE, 1, 1, 1.0),
            "complaints_platform": group(1, 0, targets(0, 1, 0.0), NONE, 1, 0, 0.0),
            "crm": group(6, 3, targets(3, 2, 0.6), targets(2, 2, 0.5), 1, 1, 1.0),
            "email": group(1, 1, targets(1, 0, 1.0), targets(0, 1, 0.0), 0, 0, None),
            "web": group(1, 1, NONE, NONE, 1, 1, 1.0),
        },
        "by_kind": {
            "complaint": group(2, 1, targets(1, 1, 0.5), targets(0, 1, 0.0), 1, 0, 0.0),
            "inquiry": group(1, 1, targets(1, 0, 1.0), targets(1, 0, 1.0), 0, 0, None),
            "request": group(5, 2, targets(2, 2, 0.5), targets(1, 2, 0.3333), 2, 2, 1.0),
            "suggestion": group(1, 1, NONE, NONE, 1, 1, 1.0),
        },
        "breaches_by_category": [
            {
                "category": "crm.certificate",
                "opened": 2,
                "breached": 2,
                "first_response_breached": 1,
                "resolution_breached": 1,
                "resolution_compliance": 0.0,
            },
            {
                "category": "crm.permit",
                "opened": 3,
                "breached": 2,
                "first_response_breached": 1,
                "resolution_breached": 1,
                "resolution_compliance": 0.5,
            },
            {
                "category": "complaint.delay",
                "opened": 1,
                "breached": 1,
                "first_response_breached": 0,
                "resolution_breached": 1,
                "resolution_compliance": 0.0,
            },
            {
                "category": "complaint.staff",
                "opened": 1,
                "breached": 1,
                "first_response_breached": 1,
                "resolution_breached": 0,
                "resolution_compliance": None,
            },
        ],
    },
    "walk_in": {
        "visits": 4,
        "called": 3,
        "completed": 1,
        "no_show": 1,
        "average_wait_seconds": 160.0,
        "surveys": 3,
        "satisfied": 2,
        "satisfaction": 0.6667,
    },
    "unmatched_surveys": 2,
}


def test_the_hand_computed_day(book: PolicyBook) -> None:
    typed = build_report(scenario(), START, END, book)
    report = typed.to_json()
    for section in ("period", "calls", "walk_in", "unmatched_surveys"):
        assert report[section] == EXPECTED[section], section
    for key, value in EXPECTED["tickets"].items():
        assert report["tickets"][key] == value, key
    assert report == EXPECTED
    assert json.loads(json.dumps(report)) == report
    assert Report.from_json(json.loads(json.dumps(report))) == typed  # the typed result reads back
    assert typed.with_policies({"source": "file"}).to_json() == {**EXPECTED, "policies": {"source": "file"}}


def test_every_key_of_the_contract_is_there(book: PolicyBook) -> None:
    report = build_report([], START, END, book).to_json()
    assert set(report) >= {"period", "calls", "tickets", "walk_in", "unmatched_surveys"}
    assert set(report["calls"]) >= {
        "offered",
        "answered",
        "abandoned",
        "answered_within_threshold",
        "service_level",
        "threshold_seconds",
        "average_speed_of_answer_seconds",
        "average_handle_seconds",
        "surveys",
        "satisfied",
        "satisfaction",
    }
    assert set(report["tickets"]) >= {
        "opened",
        "resolved",
        "first_response",
        "resolution",
        "surveys",
        "satisfied",
        "satisfaction",
        "by_channel",
        "by_kind",
    }
    assert set(report["walk_in"]) >= {
        "visits",
        "completed",
        "no_show",
        "average_wait_seconds",
        "surveys",
        "satisfaction",
    }
    assert report["calls"]["service_level"] is None
    assert report["tickets"]["resolution"] == {"met": 0, "breached": 0, "compliance": None}
    assert report["tickets"]["by_channel"] == {} and report["tickets"]["by_kind"] == {}
    assert report["walk_in"]["average_wait_seconds"] is None


def test_the_threshold_is_a_parameter(book: PolicyBook) -> None:
    report = build_report(scenario(), START, END, book, threshold_seconds=45).to_json()
    assert report["calls"]["threshold_seconds"] == 45
    assert report["calls"]["answered_within_threshold"] == 4
    assert report["calls"]["service_level"] == 0.8


def test_a_later_as_of_sees_the_later_events(book: PolicyBook) -> None:
    report = build_report(scenario(), START, END + timedelta(hours=2), book).to_json()
    assert report["calls"]["offered"] == 6 and report["calls"]["answered"] == 5  # C4 answered at 00:00:10
    assert report["walk_in"]["completed"] == 2  # V5 at 00:05
    assert report["tickets"]["opened"] == 10  # T10 at 01:00
    assert report["unmatched_surveys"] == 1  # T10's survey is known now
    assert report["calls"]["surveys"] == 3  # C1's survey at 01:00


def test_a_ticket_opened_before_the_period_is_not_counted(book: PolicyBook) -> None:
    d = Day()
    d.ticket("OLD", "2025-03-01T20:00:00", "crm", "request", "crm.permit")
    d.add("ticket.resolved", "OLD", "09:00")
    report = build_report(d.events, START, END, book).to_json()["tickets"]
    assert report["opened"] == 0 and report["resolved"] == 0
    assert report["resolution"] == {"met": 0, "breached": 0, "compliance": None}
    assert report["by_channel"] == {}


def test_the_period_must_not_be_empty(book: PolicyBook) -> None:
    with pytest.raises(PeriodError):
        build_report([], END, START, book)
    with pytest.raises(PeriodError):
        build_report([], START.replace(tzinfo=None), END, book)


def _shuffled(events: list[Event], rnd: random.Random, duplicates: float) -> list[Event]:
    out = list(events) + [e for e in events if rnd.random() < duplicates]
    rnd.shuffle(out)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=0, max_value=2**32))
def test_any_order_and_duplicates_give_the_same_report(book: PolicyBook, seed: int) -> None:
    events, rnd = scenario(), random.Random(seed)
    assert build_report(_shuffled(events, rnd, 0.0), START, END, book).to_json() == EXPECTED
    assert build_report(_shuffled(events, rnd, 0.1), START, END, book).to_json() == EXPECTED


@functools.cache
def _simulated() -> tuple[Event, ...]:
    """A simulated week, with the later events of its contacts (tickets resolved, surveys)."""
    params = Params(parse_when("2025-03-03"), parse_when("2025-03-10"), seed=11, scale=0.04, tail=True)
    return tuple(parse_event(raw) for raw in iter_events(params))


@functools.cache
def _default_book() -> PolicyBook:
    return load_policies(default_policy_path())


SIM_START, SIM_END = parse_instant("2025-03-04"), parse_instant("2025-03-08T12:00")


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_simulated_traffic_in_any_order_with_ten_percent_duplicates(seed: int) -> None:
    simulated, book, rnd = list(_simulated()), _default_book(), random.Random(seed)
    start, end = SIM_START, SIM_END
    expected = build_report(simulated, start, end, book)
    assert expected.calls.offered > 0 and expected.tickets.opened > 0
    assert expected.walk_in.visits > 0 and expected.tickets.surveys > 0
    assert build_report(_shuffled(simulated, rnd, 0.1), start, end, book) == expected


def _ticket_groups(events: list[Event]) -> Iterator[tuple[str, list[Event]]]:
    groups: dict[str, list[Event]] = {}
    for event in events:
        if event.type.startswith("ticket."):
            groups.setdefault(event.subject, []).append(event)
    yield from groups.items()


def test_ticket_sla_of_is_the_state_apply_builds() -> None:
    simulated, book = list(_simulated()), _default_book()
    extra = Day()
    extra.ticket("X1", "08:00", "crm", "request", "crm.permit")
    extra.add("ticket.closed", "X1", "09:00")
    extra.add("ticket.reopened", "X1", "10:00")
    extra.add("ticket.priority_changed", "X1", "08:30", priority="urgent")
    checked = 0
    rnd = random.Random(3)
    for subject, events in _ticket_groups(simulated + extra.events):
        rnd.shuffle(events)
        state: sla.TicketSla | None = None
        for event in events:
            state, _ = sla.apply(state, event, book)
        assert state is not None
        built = ticket_sla_of(subject, [ticket_mark(e) for e in events])
        assert (built.marks, built.ignored) == (state.marks, state.ignored)
        for when in (END, datetime(2025, 3, 5, 9, tzinfo=DUBAI), datetime(2025, 3, 9, tzinfo=DUBAI)):
            assert sla.evaluate(built, when, book) == sla.evaluate(state, when, book)
        checked += 1
    assert checked > 50


def test_period_parsing() -> None:
    assert parse_instant("2025-01-01") == datetime(2025, 1, 1, tzinfo=DUBAI)
    assert parse_instant("2025-01-01T08:30") == datetime(2025, 1, 1, 8, 30, tzinfo=DUBAI)
    assert parse_instant("2025-01-01T04:30:00Z") == datetime(2025, 1, 1, 8, 30, tzinfo=DUBAI)
    period = parse_period("2025-01-01", "2025-07-01")
    assert period.to_json() == {"from": "2025-01-01T00:00:00+04:00", "to": "2025-07-01T00:00:00+04:00"}
    assert rfc3339(datetime(2025, 1, 1, 0, 0, 0, 500, tzinfo=UTC)) == "2025-01-01T04:00:00.000500+04:00"
    assert datetime(2025, 6, 30, 23, 59, tzinfo=DUBAI) in period
    assert datetime(2025, 7, 1, tzinfo=DUBAI) not in period
    for bad in ("", "2025-13-01", "yesterday", "2025-01-01T25:00"):
        with pytest.raises(PeriodError):
            parse_instant(bad)
    with pytest.raises(PeriodError, match="must be after"):
        parse_period("2025-07-01", "2025-07-01")
    with pytest.raises(PeriodError):
        Period(datetime(2025, 1, 1), datetime(2025, 1, 2))


def test_markdown_in_english_and_arabic(book: PolicyBook) -> None:
    report = build_report(scenario(), START, END, book)
    english = render_markdown(report, "en")
    assert english.startswith("# Customer service report\n")
    assert "**Period:** 2 March 2025 (Asia/Dubai time)" in english
    assert "| Service level | 60.0% |" in english
    assert "| Average handle time | 350.0 s |" in english
    assert "| CRM | 6 | 3 | 60.0% | 50.0% | 100.0% |" in english
    assert "| `crm.certificate` | 2 | 2 | 1 | 1 | 0.0% |" in english
    assert "| Resolution within deadline | 40.0% (2 met, 3 breached) |" in english
    assert "| Email | 1 | 1 | 100.0% | 0.0% | n/a |" in english
    assert "unknown calls, tickets or visits: 2." in english
    arabic = render_markdown(Report.from_json(json.loads(json.dumps(report.to_json()))), "ar")
    assert arabic.startswith('<div dir="rtl" lang="ar">') and arabic.rstrip().endswith("</div>")
    assert "# تقرير خدمة المتعاملين" in arabic
    assert "| مستوى الخدمة | 60.0% |" in arabic
    assert "| نظام إدارة علاقات المتعاملين | 6 | 3 | 60.0% | 50.0% | 100.0% |" in arabic
    assert "2 مارس 2025" in arabic
    with pytest.raises(RenderError):
        render_markdown(report, "fr")


def test_markdown_of_a_period_with_times(book: PolicyBook) -> None:
    start, end = parse_instant("2025-03-02T08:00"), parse_instant("2025-03-02T14:30")
    text = render_markdown(build_report(scenario(), start, end, book), "en")
    assert "2 March 2025 08:00 until (exclusive) 2 March 2025 14:30" in text
    # at 14:30 only T2 is late: acknowledged after 1.5 h and still open after 5.5 h (targets 1 h, 4 h)
    assert "| `crm.permit` | 3 | 2 | 1 | 1 | 50.0% |" in text
    assert text.count("| `") == 1
    empty = render_markdown(build_report([], start, end, book), "en")
    assert "No deadline was breached." in empty and "| Service level | n/a |" in empty

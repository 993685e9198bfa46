"""Per-subject KPI facts and the book of figures, checked by hand and against the period report."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from producers.simulator import Params, iter_events, parse_when
from schemas import Event, new_event, parse_event
from tawasul.domain import kpis
from tawasul.domain.kpi_state import (
    CALL_FIGURES,
    KPI_EVENT_TYPES,
    NOW_FIGURES,
    SURVEY_FIGURES,
    VISIT_FIGURES,
    KpiBook,
    KpiConfig,
    KpiStateError,
    Row,
    SubjectRecord,
    Tally,
    apply,
    apply_ticket_state,
    contributions,
    normalised_points,
    rebuild,
    scope,
    scope_key,
    sla_state_of,
    snapshot_key,
)
from tawasul.domain.policies import load_policies
from tawasul.domain.report import build_report
from tawasul.domain.windows import to_us, window_span
from tawasul.infra.settings import default_policies_path

DAY = "2025-03-04"
CONFIG = KpiConfig(thresholds={"zakat": 30})


def ev(kind: str, subject: str, clock: str, data: dict[str, Any] | None = None, id: str | None = None) -> Event:
    time = clock if "T" in clock else f"{DAY}T{clock}+04:00"
    return new_event(kind, subject, time, data or {}, "/tests", id=id or f"{subject}:{kind}:{clock}")


def book_of(events: Iterable[Event], as_of: str, config: KpiConfig = CONFIG) -> KpiBook:
    """Fold the events per subject and feed the records into a fresh book at `as_of`."""
    records: dict[str, SubjectRecord] = {}
    for event in events:
        new = apply(records.get(event.subject), event)
        if new is not None:
            records[event.subject] = new
    book = KpiBook(config, to_us(datetime.fromisoformat(as_of if "T" in as_of else f"{DAY}T{as_of}+04:00")))
    for subject, record in records.items():
        book.update(subject, record)
    return book


def figures(book: KpiBook, where: tuple[tuple[str, str], ...], window: str) -> dict[str, Any]:
    return {r.figure: r.value for r in book.window_rows(where) if r.window == window}


def now_figures(book: KpiBook) -> dict[tuple[str, str], Any]:
    return {(r.figure, scope_key(r.scope)): r.value for r in book.now_rows()}


CALLS = [
    # C1: answered exactly at the threshold (20 s), 200 s talk + 30 s wrap-up
    ev("call.offered", "C1", "10:00:00", {"queue": "general"}),
    ev("call.answered", "C1", "10:00:20", {"queue": "general", "agent": "a-1"}),
    ev("call.ended", "C1", "10:03:40", {"queue": "general", "agent": "a-1", "wrap_up_seconds": 30}),
    # C2: answered 1 s too late, 60 s talk, no wrap-up
    ev("call.offered", "C2", "10:01:00", {"queue": "general"}),
    ev("call.answered", "C2", "10:01:21", {"queue": "general", "agent": "a-2"}),
    ev("call.ended", "C2", "10:02:21", {}),
    # C3: a short abandon (3 s) still counts against the service level
    ev("call.offered", "C3", "10:02:00", {"queue": "general"}),
    ev("call.abandoned", "C3", "10:02:03", {"queue": "general"}),
    # C4: still waiting
    ev("call.offered", "C4", "10:03:00", {"queue": "general"}),
    # C5: zakat has a 30 s threshold; answered after 25 s, still talking
    ev("call.offered", "C5", "10:04:00", {"queue": "zakat"}),
    ev("call.answered", "C5", "10:04:25", {"queue": "zakat", "agent": "a-9"}),
]


def test_call_figures_by_hand() -> None:
    book = book_of(CALLS, "10:05:00")
    total = figures(book, (), "15m")
    assert total == total | {
        "calls.offered": 5.0,
        "calls.answered": 3.0,
        "calls.abandoned": 1.0,
        "calls.answered_within_threshold": 2.0,
        "calls.service_level": 0.5,
        "calls.average_speed_of_answer_seconds": 22.0,
        "calls.average_handle_seconds": 145.0,
        "calls.abandon_ratio": 0.25,
    }
    general = figures(book, scope(queue="general"), "1h")
    assert general["calls.service_level"] == 0.3333 and general["calls.answered_within_threshold"] == 1.0
    assert general["calls.average_speed_of_answer_seconds"] == 20.5
    assert general["calls.abandon_ratio"] == 0.3333
    zakat = figures(book, scope(queue="zakat"), "today")
    assert zakat["calls.service_level"] == 1.0 and zakat["calls.average_handle_seconds"] is None
    now = now_figures(book)
    assert now[("calls.waiting", "")] == 1.0 and now[("calls.longest_wait_seconds", "")] == 120.0
    assert now[("calls.waiting", "queue=zakat")] == 0.0 and now[("calls.longest_wait_seconds", "queue=zakat")] is None
    assert now[("calls.agents_on_call", "")] == 1.0 and now[("calls.agents_on_call", "queue=zakat")] == 1.0
    assert now[("calls.agents_on_call", "queue=general")] == 0.0
    assert {r.figure for r in book.window_rows(())} == {*CALL_FIGURES, *SURVEY_FIGURES, *VISIT_FIGURES}
    assert {r.figure for r in book.window_rows(scope(queue="zakat"))} == {*CALL_FIGURES, *SURVEY_FIGURES}
    assert {r.figure for r in book.now_rows()} == set(NOW_FIGURES)
    assert now[("tickets.open", "")] == 0.0
    rows = {r.key: r for r in book.window_rows(())}
    assert rows["calls.service_level|15m|"].count == 4
    assert rows["calls.average_handle_seconds|15m|"].count == 2


def test_order_and_duplicates_do_not_matter() -> None:
    rng = random.Random(3)
    expected = book_of(CALLS, "10:05:00").window_rows(())
    for _ in range(5):
        shuffled = CALLS + rng.sample(CALLS, 4)
        rng.shuffle(shuffled)
        assert book_of(shuffled, "10:05:00").window_rows(()) == expected
    record = apply(None, CALLS[0])
    assert record is not None and apply(record, CALLS[0]) is record


def test_the_earliest_event_of_a_type_wins_and_answer_before_abandon() -> None:
    events = [
        ev("call.offered", "C", "10:00:00", {"queue": "general"}),
        ev("call.abandoned", "C", "10:00:50", {"queue": "general"}),
        ev("call.answered", "C", "10:00:40", {"queue": "general", "agent": "a"}),
        ev("call.answered", "C", "10:00:45", {"queue": "general", "agent": "b"}, id="late-answer"),
    ]
    record = None
    for event in events:
        record = apply(record, event)
    assert record is not None and record.answered is not None and record.answered[3] == "a"
    t = figures(book_of(events, "10:01:00"), (), "15m")
    assert (t["calls.answered"], t["calls.abandoned"], t["calls.average_speed_of_answer_seconds"]) == (1.0, 0.0, 40.0)


def test_surveys_on_both_scales() -> None:
    scores = [(5, 5, "S1"), (4, 5, "S2"), (3, 5, "S3"), (3, 3, "S4"), (2, 3, "S5"), (1, 3, "S6")]
    events = [
        ev("call.offered", "C1", "09:00:00", {"queue": "general"}),
        ev("call.answered", "C1", "09:00:05", {"queue": "general", "agent": "a-1"}),
    ]
    events += [
        ev("survey.submitted", "C1", f"09:{10 + 3 * i}:00", {"channel": "call", "score": s, "scale": sc}, id=name)
        for i, (s, sc, name) in enumerate(scores)
    ]
    book = book_of(events, "09:30:00")
    expected = {
        "surveys.responses": 6.0,
        "surveys.satisfied": 3.0,
        "surveys.satisfaction": 0.5,
        "surveys.average_score": 3.5,
    }
    for where in [(), scope(contact="call"), scope(channel="call"), scope(queue="general"), scope(agent="a-1")]:
        assert figures(book, where, "1h") == figures(book, where, "1h") | expected, where
    assert [normalised_points(s, 3) for s in (1, 2, 3)] == [1, 3, 5]
    last_15 = figures(book, scope(agent="a-1"), "15m")  # [09:16, 09:31): S3 to S6
    assert (last_15["surveys.responses"], last_15["surveys.satisfied"], last_15["surveys.average_score"]) == (
        4.0,
        1.0,
        3.0,
    )


def test_ticket_and_visit_surveys_count_under_their_subject() -> None:
    events = [
        ev(
            "ticket.opened",
            "T1",
            "08:00:00",
            {
                "channel": "crm",
                "kind": "request",
                "category": "zakat.payment",
                "priority": "normal",
                "department": "zakat",
            },
        ),
        ev("survey.submitted", "T1", "09:00:00", {"channel": "crm", "score": 4}),
        ev("visit.checked_in", "V1", "08:00:00", {"centre": "main", "service": "x"}),
        ev("survey.submitted", "V1", "09:00:00", {"channel": "walk_in", "score": 1, "scale": 3}),
    ]
    book = book_of(events, "09:30:00")
    for where in [
        scope(contact="ticket"),
        scope(channel="crm"),
        scope(kind="request"),
        scope(category="zakat.payment"),
        scope(department="zakat"),
    ]:
        assert figures(book, where, "1h")["surveys.satisfaction"] == 1.0, where
    for where in [scope(contact="visit"), scope(channel="walk_in"), scope(centre="main")]:
        assert figures(book, where, "1h")["surveys.satisfaction"] == 0.0, where
    assert figures(book, (), "1h")["surveys.responses"] == 2.0


def test_a_late_survey_lands_in_the_window_of_its_own_time() -> None:
    opened = ev(
        "ticket.opened",
        "T1",
        "2025-03-04T08:00:00+04:00",
        {"channel": "crm", "kind": "request", "category": "c", "priority": "low"},
    )
    late = ev("survey.submitted", "T1", "2025-03-04T23:50:00+04:00", {"channel": "crm", "score": 5})
    book = book_of([opened], "2025-03-05T00:20:00+04:00")
    record = apply(apply(None, opened), late)
    assert record is not None
    book.update("T1", record)  # arrives after midnight, timed before it
    assert figures(book, (), "today")["surveys.responses"] == 0.0
    assert figures(book, (), "1h")["surveys.responses"] == 1.0
    assert figures(book, (), "24h")["surveys.responses"] == 1.0
    assert figures(book, (), "15m")["surveys.responses"] == 0.0
    assert figures(book, (), "month")["surveys.responses"] == 1.0


def test_a_survey_about_an_unknown_subject_is_held_then_unmatched_then_matched() -> None:
    survey = ev("survey.submitted", "T9", "2025-03-04T10:00:00+04:00", {"channel": "app", "score": 5})
    record = apply(None, survey)
    assert record is not None
    book = KpiBook(CONFIG, to_us(survey.time))
    records = {"T9": record}
    book.update("T9", record)
    assert figures(book, (), "24h")["surveys.responses"] == 0.0
    assert now_figures(book)[("surveys.pending", "")] == 1.0
    book.advance(to_us(survey.time + timedelta(hours=23, minutes=59)), records.get)
    assert figures(book, (), "24h")["surveys.responses"] == 0.0
    book.advance(to_us(survey.time + timedelta(hours=24)), records.get)
    assert figures(book, (), "7d")["surveys.responses"] == 1.0
    assert figures(book, scope(contact="unmatched"), "7d")["surveys.responses"] == 1.0
    assert figures(book, scope(channel="app"), "7d")["surveys.responses"] == 1.0
    assert now_figures(book)[("surveys.pending", "")] == 0.0
    # the ticket shows up late: the survey moves to it
    opened = ev(
        "ticket.opened",
        "T9",
        "2025-03-04T09:00:00+04:00",
        {"channel": "web", "kind": "complaint", "category": "c", "priority": "low"},
    )
    matched = apply(record, opened)
    assert matched is not None
    book.update("T9", matched)
    assert figures(book, scope(contact="unmatched"), "7d")["surveys.responses"] == 0.0
    assert figures(book, scope(channel="web"), "7d")["surveys.responses"] == 1.0
    assert figures(book, scope(channel="app"), "7d")["surveys.responses"] == 0.0
    assert figures(book, (), "7d")["surveys.responses"] == 1.0


def test_walk_in_figures() -> None:
    events = [
        ev("visit.checked_in", "V1", "09:00:00", {"centre": "main", "service": "s"}),
        ev("visit.called", "V1", "09:10:00", {"centre": "main", "counter": "3"}),
        ev("visit.completed", "V1", "09:25:00", {"centre": "main"}),
        ev("visit.checked_in", "V2", "09:05:00", {"centre": "main", "service": "s"}),
        ev("visit.no_show", "V2", "09:30:00", {"centre": "main"}),
        ev("visit.checked_in", "V3", "09:20:00", {"centre": "hatta", "service": "s"}),
    ]
    book = book_of(events, "09:40:00")
    total = figures(book, (), "1h")
    assert total == total | {
        "visits.checked_in": 3.0,
        "visits.called": 1.0,
        "visits.completed": 1.0,
        "visits.no_show": 1.0,
        "visits.average_wait_seconds": 600.0,
    }
    assert figures(book, scope(centre="hatta"), "1h")["visits.average_wait_seconds"] is None
    now = now_figures(book)
    assert now[("visits.waiting", "")] == 1.0 and now[("visits.longest_wait_seconds", "")] == 1200.0
    assert now[("visits.waiting", "centre=main")] == 0.0


def state(ticket: str, version: int, status: str = "open", **targets: dict[str, Any]) -> dict[str, Any]:
    return {
        "ticket_id": ticket,
        "channel": "crm",
        "kind": "request",
        "category": "c",
        "priority": "high",
        "department": None,
        "status": status,
        "policy": "p" if targets else None,
        "updated_at": "2025-03-04T10:00:00+04:00",
        "version": version,
        "targets": targets,
    }


def test_ticket_backlog_by_sla_state() -> None:
    running = {"state": "running", "warned": False, "breached": False, "deadline": None}
    warned = running | {"warned": True}
    breached = {"state": "breached", "warned": True, "breached": True, "deadline": None}
    assert sla_state_of(state("T", 1)) == "none"
    assert sla_state_of(state("T", 1, first_response=running)) == "on_track"
    assert sla_state_of(state("T", 1, first_response=running, resolution=warned)) == "at_risk"
    assert sla_state_of(state("T", 1, first_response=breached, resolution=running)) == "breached"
    met_after_warning = {"state": "met", "warned": True, "breached": False, "deadline": None}
    assert sla_state_of(state("T", 1, first_response=met_after_warning, resolution=running)) == "on_track"
    book = KpiBook(CONFIG, to_us(datetime.fromisoformat("2025-03-04T10:00:00+04:00")))
    records: dict[str, SubjectRecord] = {}
    for message in [
        state("T1", 1, first_response=running),
        state("T2", 3, resolution=warned),
        state("T2", 2, resolution=running),
        state("T3", 1, first_response=running),
    ]:
        subject = message["ticket_id"]
        records[subject] = apply_ticket_state(records.get(subject), message)
        book.update(subject, records[subject])
    now = now_figures(book)
    assert now[("tickets.open", "")] == 3.0 and now[("tickets.open", "sla_state=at_risk")] == 1.0
    assert now[("tickets.open", "channel=crm,kind=request,priority=high,sla_state=on_track")] == 2.0
    records["T1"] = apply_ticket_state(records["T1"], state("T1", 2, status="closed"))
    book.update("T1", records["T1"])
    now = now_figures(book)
    assert now[("tickets.open", "")] == 2.0 and now[("tickets.open", "sla_state=on_track")] == 1.0
    with pytest.raises(KpiStateError):
        apply_ticket_state(None, {"ticket_id": "T"})


def test_a_breach_fired_by_the_clock_reaches_the_backlog() -> None:
    """A warning or breach changes no `version` (no event): it still moves the ticket forward,
    and the same-version state delivered again afterwards does not move it back."""
    running = {"state": "running", "warned": False, "breached": False, "deadline": None}
    warned = running | {"warned": True}
    breached = {"state": "breached", "warned": True, "breached": True, "deadline": None}
    record = apply_ticket_state(None, state("T", 1, first_response=running))
    record = apply_ticket_state(record, state("T", 1, first_response=warned))
    assert record.backlog is not None and record.backlog.sla_state == "at_risk"
    record = apply_ticket_state(record, state("T", 1, first_response=breached))
    assert record.backlog is not None and record.backlog.sla_state == "breached"
    for late in (state("T", 1, first_response=warned), state("T", 1, first_response=running)):
        assert apply_ticket_state(record, late) is record
    acknowledged = apply_ticket_state(record, state("T", 2, first_response=running | {"state": "met"}))
    assert acknowledged.backlog is not None and acknowledged.backlog.sla_state == "on_track"


def test_records_round_trip_and_keys() -> None:
    record = None
    for event in CALLS[:3] + [ev("survey.submitted", "C1", "10:09:00", {"channel": "call", "score": 2})]:
        record = apply(record, event)
    assert record is not None
    record = apply_ticket_state(record, state("C1", 4))
    assert SubjectRecord.from_dict(record.to_dict()) == record
    with pytest.raises(KpiStateError):
        SubjectRecord.from_dict({"offered": [1]})
    assert snapshot_key("calls.service_level", "15m", scope(queue="general")) == "calls.service_level|15m|queue=general"
    assert snapshot_key("surveys.satisfaction", "today", ()) == "surveys.satisfaction|today|"
    assert scope_key(scope(category="a|b,c=d", kind="x")) == "category=a%7Cb%2Cc%3Dd,kind=x"
    assert Row("f", "w", (), None, 0).key == "f|w|"
    assert Tally(offered=2) - Tally(offered=2) == Tally() and not Tally()


def simulated_day(day: str, scale: float) -> list[Event]:
    start = parse_when(day)
    params = Params(start, start + timedelta(days=1), seed=17, scale=scale)
    return [parse_event(raw) for raw in iter_events(params)]


def test_figures_equal_the_period_report_over_each_window() -> None:
    events = simulated_day("2025-03-04", 0.5)
    surveyed = sorted({e.subject for e in events if e.type == "survey.submitted" and e.subject.startswith("T")})
    orphans = set(surveyed[:3])  # their tickets were opened before the data starts
    events = [e for e in events if not (e.type == "ticket.opened" and e.subject in orphans)]
    last = max(e.time for e in events)
    as_of = datetime.fromisoformat(last.isoformat())
    config = KpiConfig(survey_hold=timedelta(0))  # the report counts unknown subjects as unmatched at once
    book = book_of(events, as_of.isoformat(), config)
    policies = load_policies(default_policies_path())
    for window in ("1h", "24h", "today", "month"):
        start, end = window_span(window, as_of)
        report = build_report(events, start, end, policies).to_json()
        calls, walk_in = report["calls"], report["walk_in"]
        live = figures(book, (), window)
        assert live["calls.offered"] == calls["offered"] and live["calls.abandoned"] == calls["abandoned"]
        assert live["calls.service_level"] == calls["service_level"]
        assert live["calls.average_speed_of_answer_seconds"] == calls["average_speed_of_answer_seconds"]
        assert live["calls.average_handle_seconds"] == calls["average_handle_seconds"]
        assert live["calls.abandon_ratio"] == calls["abandon_ratio"]
        assert live["visits.checked_in"] == walk_in["visits"] and live["visits.no_show"] == walk_in["no_show"]
        assert live["visits.average_wait_seconds"] == walk_in["average_wait_seconds"]
        assert figures(book, scope(contact="call"), window)["surveys.satisfaction"] == calls["satisfaction"]
        assert (
            figures(book, scope(contact="ticket"), window)["surveys.satisfaction"] == report["tickets"]["satisfaction"]
        )
        assert figures(book, scope(contact="visit"), window)["surveys.satisfaction"] == walk_in["satisfaction"]
        assert book.tally(scope(contact="unmatched"), window).responses == report["unmatched_surveys"]
        for kind, group in report["tickets"]["by_kind"].items():
            t = book.tally(scope(kind=kind), window)
            assert (t.responses, kpis.satisfaction(t.satisfied, t.responses)) == (
                group["surveys"],
                group["satisfaction"],
            )
    assert figures(book, (), "today")["calls.offered"] > 40
    assert book.tally(scope(contact="unmatched"), "today").responses == 3


def test_a_rebuilt_book_equals_the_live_one() -> None:
    events = simulated_day("2025-03-05", 0.2)
    rng = random.Random(1)
    records: dict[str, SubjectRecord] = {}
    live = KpiBook(CONFIG)
    for event in events:
        if event.type not in KPI_EVENT_TYPES:
            continue
        live.advance(to_us(event.time), records.get)  # the replay clock: latest event time seen
        new = apply(records.get(event.subject), event)
        assert new is not None
        records[event.subject] = new
        live.update(event.subject, new)
    stored = list(records.values())
    rng.shuffle(stored)
    rebuilt = rebuild(CONFIG, stored)
    assert rebuilt.as_of_us == live.as_of_us
    assert sorted(rebuilt.scopes()) == sorted(live.scopes())
    for where in live.scopes():
        assert rebuilt.window_rows(where) == live.window_rows(where)
    assert rebuilt.now_rows() == live.now_rows()
    sample = stored[0]
    assert contributions(sample, CONFIG, live.as_of_us) == contributions(
        SubjectRecord.from_dict(sample.to_dict()), CONFIG, live.as_of_us
    )

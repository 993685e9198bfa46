"""The ticket SLA engine: hand-computed timelines against the rules of contract section 3."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas import Event, new_event
from tawasul.domain import sla
from tawasul.domain.policies import PolicyBook, load_policies_text
from tawasul.domain.sla import SlaError, SlaOutcome, TicketSla

DUBAI = ZoneInfo("Asia/Dubai")
H = timedelta(hours=1)
POLICIES = """
calendars:
  gov:
    hours: {mon: ["07:30-15:30"], tue: ["07:30-15:30"], wed: ["07:30-15:30"], thu: ["07:30-15:30"],
            fri: ["07:30-12:00"]}
    holidays: {country: AE}
    closed: ["2025-12-03"]
    ramadan_hours: {mon: ["09:00-14:30"], tue: ["09:00-14:30"], wed: ["09:00-14:30"], thu: ["09:00-14:30"],
                    fri: ["09:00-12:00"]}
  always: {always_open: true}
policies:
  - {name: mosque-urgent, match: {kind: facility_report, priority: urgent}, calendar: always,
     first_response: 1h, resolution: 4h}
  - {name: facility-normal, match: {kind: facility_report}, calendar: gov, first_response: 4h, resolution: 24h}
  - {name: crm-standard, match: {channel: crm}, calendar: gov, first_response: 4h, resolution: 24h}
"""
CRM = {"channel": "crm", "kind": "request", "category": "certificates", "priority": "normal"}
FACILITY = {
    "channel": "app",
    "kind": "facility_report",
    "category": "mosque.air_conditioning",
    "priority": "normal",
    "location": {"mosque_id": "M-17", "area": "Deira"},
}


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return load_policies_text(POLICIES)


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=DUBAI)


def ev(
    kind: str, when: datetime, data: dict[str, object] | None = None, *, ticket: str = "T-1", id: str | None = None
) -> Event:
    return new_event(f"ticket.{kind}", ticket, when, data or {}, "/tests/sla", id=id)


def run(book: PolicyBook, events: list[Event], state: TicketSla | None = None) -> tuple[TicketSla, list[SlaOutcome]]:
    outcomes: list[SlaOutcome] = []
    for event in events:
        state, out = sla.apply(state, event, book)
        outcomes += out
    assert state is not None
    return state, outcomes


def summary(outcomes: list[SlaOutcome]) -> list[tuple[str, str, datetime, datetime, int]]:
    return [(o.type, o.target, o.at, o.deadline, o.cycle) for o in outcomes]


def test_met_in_working_hours(book: PolicyBook) -> None:
    state, out = run(
        book,
        [
            ev("opened", at(2025, 2, 24, 9), CRM),
            ev("acknowledged", at(2025, 2, 24, 12)),
            ev("resolved", at(2025, 2, 26, 10)),
        ],
    )
    assert summary(out) == [
        ("sla.met", "first_response", at(2025, 2, 24, 12), at(2025, 2, 24, 13), 0),
        ("sla.met", "resolution", at(2025, 2, 26, 10), at(2025, 2, 27, 9), 0),
    ]
    assert out[0].policy == "crm-standard" and out[0].channel == "crm" and out[0].priority == "normal"
    assert sla.next_deadline(state) is None
    status = sla.evaluate(state, at(2025, 3, 10), book)
    assert {k: (v.status, v.elapsed) for k, v in status.items()} == {
        "first_response": ("met", 3 * H),
        "resolution": ("met", 17 * H),
    }


def test_weekend_crossing_warning_then_breach_at_the_deadline(book: PolicyBook) -> None:
    state, out = run(book, [ev("opened", at(2025, 2, 21, 10), CRM)])  # Friday
    assert out == []
    assert sla.next_deadline(state) == at(2025, 2, 24, 8, 30)  # 3h of 4h: Fri 2h + Mon 1h
    assert sla.due(state, at(2025, 2, 22, 12), book) == (state, [])
    state, out = sla.due(state, at(2025, 2, 24, 9), book)
    assert summary(out) == [("sla.warning", "first_response", at(2025, 2, 24, 8, 30), at(2025, 2, 24, 9, 30), 0)]
    state, out = sla.due(state, at(2025, 2, 24, 9, 30), book)
    assert out == []  # the limit itself is still met
    state, out = sla.due(state, at(2025, 2, 24, 9, 30, 1), book)
    assert summary(out) == [("sla.breached", "first_response", at(2025, 2, 24, 9, 30), at(2025, 2, 24, 9, 30), 0)]
    assert sla.due(state, at(2025, 2, 24, 10), book)[1] == []  # exactly once
    state, out = run(book, [ev("acknowledged", at(2025, 2, 24, 10))], state)
    assert out == []  # already breached: no second event
    fr = sla.evaluate(state, at(2025, 2, 24, 11), book)["first_response"]
    assert (fr.status, fr.elapsed, fr.deadline) == ("breached", 4.5 * H, at(2025, 2, 24, 9, 30))


def test_limit_reached_at_closing_time_breaches_only_when_work_time_resumes(book: PolicyBook) -> None:
    state, _ = run(book, [ev("opened", at(2025, 2, 21, 8), CRM)])  # Friday, deadline 12:00 at closing
    status = sla.evaluate(state, at(2025, 2, 22, 9), book)["first_response"]
    assert (status.status, status.elapsed, status.deadline) == ("running", 4 * H, at(2025, 2, 21, 12))
    _, out = sla.due(state, at(2025, 2, 22, 9), book)
    assert [o.type for o in out] == ["sla.warning"]
    state, out = run(book, [ev("acknowledged", at(2025, 2, 22, 10))], state)  # Saturday: no business time passed
    assert summary(out) == [("sla.met", "first_response", at(2025, 2, 22, 10), at(2025, 2, 21, 12), 0)]


@pytest.mark.parametrize(
    ("opened", "data", "deadline", "why"),
    [
        (at(2025, 3, 27, 14), FACILITY, at(2025, 4, 2, 8), "Ramadan hours, then Eid al-Fitr 30 Mar - 1 Apr"),
        (at(2025, 6, 4, 15), CRM, at(2025, 6, 9, 11), "Arafat Day and Eid al-Adha"),
        (at(2025, 11, 28, 10), CRM, at(2025, 12, 4, 9, 30), "National Day and an extra closed date"),
        (at(2025, 2, 28, 11), CRM, at(2025, 3, 3, 12), "Friday on normal hours, Monday on Ramadan hours"),
        (at(2025, 2, 24, 9), {**FACILITY, "priority": "urgent"}, at(2025, 2, 24, 10), "around the clock"),
    ],
)
def test_first_response_deadlines(
    book: PolicyBook, opened: datetime, data: dict[str, object], deadline: datetime, why: str
) -> None:
    state, _ = run(book, [ev("opened", opened, data)])
    status = sla.evaluate(state, opened + timedelta(seconds=1), book)["first_response"]
    assert status.deadline == deadline, why
    _, out = sla.due(state, deadline + timedelta(seconds=1), book)
    assert [(o.type, o.target, o.at) for o in out if o.target == "first_response"] == [
        ("sla.warning", "first_response", out[0].at),
        ("sla.breached", "first_response", deadline),
    ]


def test_pause_across_nights(book: PolicyBook) -> None:
    state, _ = run(
        book,
        [ev("opened", at(2025, 2, 24, 14), CRM), ev("paused", at(2025, 2, 24, 15), {"reason": "waiting_on_customer"})],
    )
    assert sla.next_deadline(state) is None  # no deadline while paused
    paused = sla.evaluate(state, at(2025, 2, 25, 12), book)["first_response"]
    assert (paused.status, paused.elapsed, paused.deadline) == ("undecided", 1 * H, None)
    state, _ = run(book, [ev("resumed", at(2025, 2, 26, 9))], state)
    assert sla.next_deadline(state) == at(2025, 2, 26, 11)  # warning at 3h of 4h
    running = sla.evaluate(state, at(2025, 2, 26, 10), book)["first_response"]
    assert (running.status, running.elapsed, running.deadline) == ("running", 2 * H, at(2025, 2, 26, 12))
    state, out = run(book, [ev("acknowledged", at(2025, 2, 26, 11, 30))], state)
    assert summary(out) == [("sla.met", "first_response", at(2025, 2, 26, 11, 30), at(2025, 2, 26, 12), 0)]
    status = sla.evaluate(state, at(2025, 3, 1), book)
    assert status["first_response"].elapsed == 3.5 * H
    assert status["resolution"].elapsed == 1 * H + 6.5 * H + 8 * H + 4.5 * H  # Mon, Wed, Thu, short Fri


def test_reopen_continues_the_resolution_clock_and_the_last_resolution_decides(book: PolicyBook) -> None:
    opened = [
        ev("opened", at(2025, 2, 24, 9), CRM),
        ev("acknowledged", at(2025, 2, 24, 10)),
        ev("resolved", at(2025, 2, 25, 9)),
    ]
    state, out = run(book, opened)
    assert [(o.type, o.target, o.cycle) for o in out] == [
        ("sla.met", "first_response", 0),
        ("sla.met", "resolution", 0),
    ]
    assert sla.evaluate(state, at(2025, 3, 1), book)["resolution"].elapsed == 8 * H
    state, out = run(book, [ev("reopened", at(2025, 3, 3, 9))], state)  # gap of a week does not count
    assert out == []
    status = sla.evaluate(state, at(2025, 3, 3, 12), book)["resolution"]
    assert (status.status, status.elapsed, status.deadline) == ("running", 11 * H, at(2025, 3, 5, 14))
    met, out = run(book, [ev("resolved", at(2025, 3, 4, 10))], state)
    assert summary(out) == [("sla.met", "resolution", at(2025, 3, 4, 10), at(2025, 3, 5, 14), 1)]
    assert out[0].id == "T-1:resolution:sla.met:1"
    late, out = run(book, [ev("resolved", at(2025, 3, 5, 15))], state)  # no `due` in between
    assert summary(out) == [("sla.breached", "resolution", at(2025, 3, 5, 14), at(2025, 3, 5, 14), 1)]
    assert sla.evaluate(late, at(2025, 3, 10), book)["resolution"].status == "breached"
    assert sla.evaluate(met, at(2025, 3, 10), book)["resolution"].status == "met"


def test_priority_change_rematches_from_the_original_opening(book: PolicyBook) -> None:
    state, _ = run(book, [ev("opened", at(2025, 2, 24, 9), FACILITY)])
    assert sla.evaluate(state, at(2025, 2, 24, 9, 10), book)["first_response"].policy == "facility-normal"
    state, out = run(book, [ev("priority_changed", at(2025, 2, 24, 9, 30), {"priority": "urgent"})], state)
    assert out == []
    assert sla.next_deadline(state) == at(2025, 2, 24, 9, 45)
    state, out = sla.due(state, at(2025, 2, 24, 10, 30), book)
    assert summary(out) == [
        ("sla.warning", "first_response", at(2025, 2, 24, 9, 45), at(2025, 2, 24, 10), 0),
        ("sla.breached", "first_response", at(2025, 2, 24, 10), at(2025, 2, 24, 10), 0),
    ]
    assert {(o.policy, o.priority) for o in out} == {("mosque-urgent", "urgent")}
    res = sla.evaluate(state, at(2025, 2, 24, 14), book)["resolution"]
    assert (res.policy, res.status, res.elapsed, res.deadline) == (
        "mosque-urgent",
        "breached",
        5 * H,
        at(2025, 2, 24, 13),
    )


def test_a_stopped_target_keeps_the_policy_in_force_when_it_stopped(book: PolicyBook) -> None:
    state, out = run(
        book,
        [
            ev("opened", at(2025, 2, 24, 9), FACILITY),
            ev("acknowledged", at(2025, 2, 24, 11)),
            ev("priority_changed", at(2025, 2, 24, 11, 30), {"priority": "urgent"}),
        ],
    )
    assert [(o.type, o.policy) for o in out] == [("sla.met", "facility-normal")]
    status = sla.evaluate(state, at(2025, 2, 24, 12), book)
    assert (status["first_response"].policy, status["first_response"].status) == ("facility-normal", "met")
    assert (status["resolution"].policy, status["resolution"].deadline) == ("mosque-urgent", at(2025, 2, 24, 13))


def test_events_after_close_are_ignored_and_counted(book: PolicyBook) -> None:
    state, _ = run(book, [ev("opened", at(2025, 2, 24, 9), CRM), ev("closed", at(2025, 2, 24, 10))])
    after, out = run(
        book,
        [
            ev("reopened", at(2025, 2, 24, 11), id="late-1"),
            ev("resolved", at(2025, 2, 24, 12), id="late-2"),
            ev("resolved", at(2025, 2, 24, 12), id="late-2"),
        ],
        state,
    )
    assert out == [] and after.marks == state.marks
    assert after.ignored_after_close == 2 and state.ignored_after_close == 0
    assert sla.evaluate(after, at(2025, 3, 1), book) == sla.evaluate(state, at(2025, 3, 1), book)
    assert after.closed


def test_a_late_close_drops_later_events_already_stored(book: PolicyBook) -> None:
    state, _ = run(
        book,
        [
            ev("opened", at(2025, 2, 24, 9), CRM),
            ev("acknowledged", at(2025, 2, 24, 11)),
            ev("closed", at(2025, 2, 24, 10)),
        ],
    )
    assert state.ignored_after_close == 1
    status = sla.evaluate(state, at(2025, 3, 1), book)
    assert status["first_response"].elapsed == 1 * H and status["resolution"].elapsed == 1 * H


def test_duplicate_id_changes_nothing(book: PolicyBook) -> None:
    opened = ev("opened", at(2025, 2, 24, 9), CRM)
    ack = ev("acknowledged", at(2025, 2, 24, 10))
    state, _ = run(book, [opened, ack])
    again, out = sla.apply(state, ack, book)
    assert again is state and out == []
    clash = ev("resolved", at(2025, 2, 24, 11), id=ack.id)  # another event reusing the id
    assert sla.apply(state, clash, book) == (state, [])


def test_events_before_the_opening_wait_for_it(book: PolicyBook) -> None:
    state, out = run(
        book, [ev("acknowledged", at(2025, 2, 24, 10)), ev("paused", at(2025, 2, 24, 11), {"reason": "x"})]
    )
    assert out == [] and sla.next_deadline(state) is None and sla.evaluate(state, at(2025, 3, 1), book) == {}
    state, out = run(book, [ev("opened", at(2025, 2, 24, 9), CRM)], state)
    assert summary(out) == [("sla.met", "first_response", at(2025, 2, 24, 10), at(2025, 2, 24, 13), 0)]
    assert sla.evaluate(state, at(2025, 3, 1), book)["resolution"].status == "undecided"


def test_out_of_order_events_give_the_same_outcomes(book: PolicyBook) -> None:
    events = [
        ev("opened", at(2025, 2, 24, 9), CRM),
        ev("paused", at(2025, 2, 24, 10), {"reason": "x"}),
        ev("resumed", at(2025, 2, 25, 9)),
        ev("acknowledged", at(2025, 2, 25, 12)),
        ev("resolved", at(2025, 2, 27, 9)),
        ev("reopened", at(2025, 2, 27, 10)),
        ev("closed", at(2025, 2, 28, 9)),
    ]
    in_order, out_a = run(book, events)
    shuffled, out_b = run(book, [events[i] for i in (1, 0, 3, 2, 5, 4, 6)])  # neighbours swapped
    assert in_order.marks == shuffled.marks
    assert (
        sorted(o.id for o in out_a)
        == sorted(o.id for o in out_b)
        == ["T-1:first_response:sla.met:0", "T-1:resolution:sla.met:0", "T-1:resolution:sla.met:1"]
    )
    status = sla.evaluate(in_order, at(2025, 3, 5), book)
    assert status == sla.evaluate(shuffled, at(2025, 3, 5), book)
    assert (status["first_response"].status, status["first_response"].elapsed) == ("met", 4 * H)
    assert (status["resolution"].status, status["resolution"].elapsed) == ("met", 24 * H)


def test_event_times_before_the_opening_count_as_the_opening(book: PolicyBook) -> None:
    state, out = run(book, [ev("opened", at(2025, 2, 24, 9), CRM), ev("acknowledged", at(2025, 2, 24, 8, 59))])
    assert out[0].type == "sla.met" and sla.evaluate(state, at(2025, 3, 1), book)["first_response"].elapsed == 0 * H


def test_no_matching_policy_means_no_sla(book: PolicyBook) -> None:
    data = {"channel": "email", "kind": "suggestion", "category": "general", "priority": "low"}
    state, out = run(book, [ev("opened", at(2025, 2, 24, 9), data), ev("resolved", at(2025, 3, 30, 9))])
    assert out == [] and sla.next_deadline(state) is None
    assert sla.due(state, at(2026, 1, 1), book)[1] == []
    assert sla.evaluate(state, at(2026, 1, 1), book) == {}


def test_evaluate_uses_only_events_before_the_instant(book: PolicyBook) -> None:
    state, _ = run(book, [ev("opened", at(2025, 2, 24, 9), CRM), ev("acknowledged", at(2025, 2, 24, 12))])
    assert sla.evaluate(state, at(2025, 2, 24, 9), book) == {}
    before = sla.evaluate(state, at(2025, 2, 24, 12), book)["first_response"]
    assert (before.status, before.elapsed) == ("running", 3 * H)
    assert sla.evaluate(state, at(2025, 2, 24, 12, 0, 1), book)["first_response"].status == "met"


def test_state_round_trips_through_json(book: PolicyBook) -> None:
    state, _ = run(
        book,
        [
            ev("opened", at(2025, 2, 24, 9), FACILITY),
            ev("acknowledged", at(2025, 2, 24, 10)),
            ev("closed", at(2025, 2, 24, 11)),
            ev("reopened", at(2025, 2, 24, 12)),
        ],
    )
    raw = json.loads(json.dumps(state.to_dict()))
    assert TicketSla.from_dict(raw) == state
    assert TicketSla.from_dict(TicketSla("T-9").to_dict()) == TicketSla("T-9")
    with pytest.raises(SlaError, match="not a stored ticket SLA state"):
        TicketSla.from_dict({"marks": []})


def test_non_ticket_events_are_ignored(book: PolicyBook) -> None:
    survey = new_event("survey.submitted", "T-1", at(2025, 2, 24, 9), {"channel": "crm", "score": 5}, "/s")
    state, out = sla.apply(None, survey, book)
    assert out == [] and state == TicketSla("T-1")


def test_outcome_data_follows_the_contract(book: PolicyBook) -> None:
    _, out = run(
        book,
        [ev("opened", at(2025, 2, 24, 9), CRM, ticket="T-7"), ev("acknowledged", at(2025, 2, 24, 10), ticket="T-7")],
    )
    assert out[0].id == "T-7:first_response:sla.met:0"
    assert out[0].to_data() == {
        "ticket_id": "T-7",
        "target": "first_response",
        "policy": "crm-standard",
        "deadline": "2025-02-24T13:00:00+04:00",
        "channel": "crm",
        "kind": "request",
        "category": "certificates",
        "priority": "normal",
    }
    new_event("sla.met", "T-7", out[0].at, out[0].to_data(), "/stream_processors/sla")

"""A ticket's SLA story: a gov-calendar complaint opened on a Thursday afternoon before the
National Day weekend, paused once, resolved late; every figure computed by hand below."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas import Event, new_event
from tawasul.domain import sla
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import PolicyBook, default_policy_path, load_policies, load_policies_text
from tawasul.domain.ticket_story import breakdown, build_story, duration_text

DUBAI = ZoneInfo("Asia/Dubai")
H = timedelta(hours=1)


def at(mo: int, d: int, h: int = 0, mi: int = 0, y: int = 2025) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=DUBAI)


def ev(kind: str, when: datetime, data: dict[str, object] | None = None, id: str | None = None) -> Event:
    return new_event(f"ticket.{kind}", "T-77", when, data or {}, "/tests/story", id=id or f"e-{kind}-{when:%d%H%M}")


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return load_policies(default_policy_path())


def scenario() -> list[Event]:
    """Thu 27 Nov 2025 14:00 a CRM complaint (policy `complaint`, gov calendar: first response
    8h, resolution 40h, warnings at 80 %). Fri 28 is a short Friday, Sat 29 / Sun 30 closed,
    Mon 1 and Tue 2 Dec are National Day. Acknowledged Wed 3 Dec 09:00, paused 10:00, resumed
    Thu 4 Dec 08:30, resolved Thu 11 Dec 10:00, closed 10:30."""
    return [
        ev("closed", at(12, 11, 10, 30)),  # arrival order does not matter
        ev(
            "opened",
            at(11, 27, 14),
            {"channel": "crm", "kind": "complaint", "category": "parking.fines", "priority": "normal"},
        ),
        ev("assigned", at(11, 27, 14, 5), {"team": "complaints", "agent": "agent-7"}),
        ev("acknowledged", at(12, 3, 9)),
        ev("paused", at(12, 3, 10), {"reason": "waiting_on_customer"}),
        ev("resumed", at(12, 4, 8, 30)),
        ev("resolved", at(12, 11, 10)),
        ev("acknowledged", at(12, 11, 11), id="late-after-close"),
    ]


def test_hand_computed_deadlines_warnings_and_outcomes(book: PolicyBook) -> None:
    story = build_story("T-77", scenario(), book, at(12, 31))
    assert [e.type for e in story.events] == [
        "ticket.opened",
        "ticket.assigned",
        "ticket.acknowledged",
        "ticket.paused",
        "ticket.resumed",
        "ticket.resolved",
        "ticket.closed",
        "ticket.acknowledged",
    ]
    assert story.events[-1].note == "ignored: after ticket.closed"
    assert story.events[1].details == {"team": "complaints", "agent": "agent-7"}
    first, resolution = story.targets
    assert first.target == "first_response" and resolution.target == "resolution"

    # the policy and the rule that chose it
    assert first.policy.name == resolution.policy.name == "complaint"
    assert first.policy.match == {"kind": ("complaint",)}
    assert first.policy.position == 3
    assert [n for n, _ in first.policy.passed_over] == ["mosque-urgent", "mosque-high", "mosque-standard"]
    assert all(misfit == "kind" for _, misfit in first.policy.passed_over)
    assert (first.policy.limit, resolution.policy.limit) == (8 * H, 40 * H)

    # first response: Thu 14:00-15:30 (1h30m) + Fri 07:30-12:00 (4h30m) + Wed 07:30-09:00 (1h30m) = 7h30m
    assert first.status == "met" and first.elapsed == 7.5 * H
    [segment] = first.segments
    assert [(s.start, s.end) for s in segment.counted.spans] == [
        (at(11, 27, 14), at(11, 27, 15, 30)),
        (at(11, 28, 7, 30), at(11, 28, 12)),
        (at(12, 3, 7, 30), at(12, 3, 9)),
    ]
    assert [(d.day, d.reason, d.name) for d in segment.counted.skipped] == [
        (date(2025, 11, 29), "weekend", None),
        (date(2025, 11, 30), "weekend", None),
        (date(2025, 12, 1), "holiday", "National Day"),
        (date(2025, 12, 2), "holiday", "National Day"),
    ]
    # deadline: 8h from the opening = 6h by Friday noon + 2h on Wednesday = Wed 3 Dec 09:30
    assert first.deadline == at(12, 3, 9, 30)
    assert first.deadline_basis is not None and first.deadline_basis.start == at(11, 27, 14)
    assert first.deadline_basis.remaining == 8 * H
    # warning at 80 % = 6h24m: 6h by Friday noon + 24m on Wednesday = 07:54
    assert first.warning_at == at(12, 3, 7, 54)

    # resolution: 8h30m until the pause (Wed 10:00), then from Thu 4 Dec 08:30 on
    assert [(s.start, s.end) for s in resolution.segments] == [
        (at(11, 27, 14), at(12, 3, 10)),
        (at(12, 4, 8, 30), at(12, 11, 10)),
    ]
    assert resolution.segments[0].counted.business == 8.5 * H
    [pause] = resolution.pauses
    # the pause skipped Wed 10:00-15:30 and Thu 07:30-08:30 of working time
    assert (pause.start, pause.end, pause.why, pause.skipped_business) == (
        at(12, 3, 10),
        at(12, 4, 8, 30),
        "paused",
        6.5 * H,
    )
    # 31h30m left from Thu 08:30: Thu 7h, Fri 4h30m, Mon 8h, Tue 8h -> 27h30m, 4h on Wed 10 Dec: 11:30
    assert resolution.deadline == at(12, 10, 11, 30)
    basis = resolution.deadline_basis
    assert basis is not None
    assert (basis.start, basis.counted_before, basis.remaining) == (at(12, 4, 8, 30), 8.5 * H, 31.5 * H)
    assert basis.walk.business == 31.5 * H
    assert [d.day for d in basis.walk.skipped] == [date(2025, 12, 6), date(2025, 12, 7)]
    # warning at 80 % = 32h: 23h30m after the resumption: Thu 7h, Fri 4h30m, Mon 8h, Tue 4h -> Tue 9 Dec 11:30
    assert resolution.warning_at == at(12, 9, 11, 30)
    assert resolution.breached_from == at(12, 10, 11, 30) + timedelta(microseconds=1)
    # elapsed at the resolution: 8h30m + Thu 7h + Fri 4h30m + Mon 8h + Tue 8h + Wed 8h + Thu 2h30m = 46h30m
    assert resolution.status == "breached" and resolution.elapsed == 46.5 * H
    assert sum((s.counted.business for s in resolution.segments), timedelta(0)) == resolution.elapsed

    # the outcomes, as the replay engine emits them
    assert [(o.type, o.target, o.at, o.deadline) for o in story.outcomes] == [
        ("sla.warning", "first_response", at(12, 3, 7, 54), at(12, 3, 9, 30)),
        ("sla.met", "first_response", at(12, 3, 9), at(12, 3, 9, 30)),
        ("sla.warning", "resolution", at(12, 9, 11, 30), at(12, 10, 11, 30)),
        ("sla.breached", "resolution", at(12, 10, 11, 30), at(12, 10, 11, 30)),
    ]


def test_story_agrees_with_the_engine_statuses(book: PolicyBook) -> None:
    """The breakdown's totals are the engine's elapsed time, at several instants of the story."""
    events = scenario()
    state = None
    for event in events:
        state, _ = sla.apply(state, event, book)
    assert state is not None
    for when in (at(11, 28, 9), at(12, 3, 12), at(12, 5, 9), at(12, 10, 12), at(12, 20)):
        story = build_story("T-77", events, book, when)
        statuses = sla.evaluate(state, when, book)
        for target in story.targets:
            status = statuses[target.target]
            counted = sum((s.counted.business for s in target.segments), timedelta(0))
            assert counted == status.elapsed == target.elapsed
            assert target.deadline == status.deadline
            if target.deadline_basis is not None:
                assert (
                    book.calendar("gov").add(target.deadline_basis.start, target.deadline_basis.remaining)
                    == target.deadline
                )
    paused = build_story("T-77", events, book, at(12, 3, 12))
    assert [t.status for t in paused.targets] == ["met", "paused"]
    assert paused.targets[1].deadline is None and paused.targets[1].pauses[-1].end is None
    assert [e.note for e in paused.events][-3:] == ["after the as-of instant"] * 3


def test_ramadan_hours_are_named() -> None:
    book = load_policies_text("""
calendars:
  gov:
    hours: {mon: ["07:30-15:30"], tue: ["07:30-15:30"], wed: ["07:30-15:30"], thu: ["07:30-15:30"]}
    ramadan_hours: {mon: ["09:00-14:30"], tue: ["09:00-14:30"], wed: ["09:00-14:30"], thu: ["09:00-14:30"]}
policies: [{name: all, calendar: gov, first_response: 8h}]
""")
    cal = book.calendar("gov")
    # 1 Ramadan 1446 = Sat 1 Mar 2025: Thu 27 Feb has normal hours, Mon 3 Mar Ramadan hours
    b = breakdown(cal, to_us(at(2, 27, 12)), to_us(at(3, 3, 12)))
    assert b.ramadan_days == (date(2025, 3, 3),)
    assert [(s.start, s.end) for s in b.spans] == [(at(2, 27, 12), at(2, 27, 15, 30)), (at(3, 3, 9), at(3, 3, 12))]
    assert b.business == 6.5 * H
    assert [d.reason for d in b.skipped] == ["weekend"] * 3


def test_no_policy_and_not_opened() -> None:
    book = load_policies_text("""
calendars: {always: {always_open: true}}
policies: [{name: crm, match: {channel: crm}, calendar: always, resolution: 4h}]
""")
    events = [ev("opened", at(1, 5, 9), {"channel": "call", "kind": "request", "category": "x", "priority": "low"})]
    story = build_story("T-77", events, book, at(1, 6))
    assert story.targets == () and story.no_policy == ("first_response", "resolution")
    empty = build_story("T-77", [ev("resolved", at(1, 5, 9))], book, at(1, 6))
    assert empty.profile == {} and empty.events[0].note == "waiting for ticket.opened"
    assert empty.to_json()["opened"] is False


def test_duration_text() -> None:
    assert duration_text(timedelta(0)) == "0s"
    assert duration_text(31.5 * H) == "31h30m"
    assert duration_text(-2 * H) == "-2h"
    assert duration_text(timedelta(minutes=1, seconds=2.5)) == "1m2.5s"


def test_reopening_and_priority_change(book: PolicyBook) -> None:
    """An urgent mosque report (always-open calendar, 1h / 4h) resolved after 3h, reopened the next
    morning, lowered to high (2h / 24h), resolved again: the gap between resolution and reopening
    is not counted, and the resolution is judged by `mosque-high`, chosen by kind and priority."""
    data = {"channel": "app", "kind": "facility_report", "category": "mosque.power", "priority": "urgent"}
    events = [
        ev("opened", at(3, 3, 22), data),
        ev("acknowledged", at(3, 3, 22, 40)),
        ev("resolved", at(3, 4, 1)),
        ev("reopened", at(3, 4, 9)),
        ev("priority_changed", at(3, 4, 9, 5), {"priority": "high"}),
        ev("resolved", at(3, 4, 12)),
    ]
    story = build_story("T-77", events, book, at(3, 5))
    first, resolution = story.targets
    assert (first.policy.name, first.policy.priority, first.status) == ("mosque-urgent", "urgent", "met")
    assert (resolution.policy.name, resolution.policy.priority) == ("mosque-high", "high")
    assert resolution.policy.match == {"kind": ("facility_report",), "priority": ("high",)}
    assert resolution.policy.passed_over == (("mosque-urgent", "priority"),)
    assert [(s.start, s.end, s.cycle) for s in resolution.segments] == [
        (at(3, 3, 22), at(3, 4, 1), 0),
        (at(3, 4, 9), at(3, 4, 12), 1),
    ]
    [gap] = resolution.pauses
    assert (gap.why, gap.skipped_business) == ("resolved", 8 * H)
    assert resolution.status == "met" and resolution.elapsed == 6 * H
    # 24h from the reopening, 3h already counted: 21h from 09:00 -> Wed 5 Mar 06:00
    assert resolution.deadline == at(3, 5, 6)
    # still urgent when reopened with 3h counted of 4h: the 75 % warning fires at once, under mosque-urgent
    assert [(o.type, o.target, o.cycle, o.policy, o.at) for o in story.outcomes] == [
        ("sla.met", "first_response", 0, "mosque-urgent", at(3, 3, 22, 40)),
        ("sla.met", "resolution", 0, "mosque-urgent", at(3, 4, 1)),
        ("sla.warning", "resolution", 1, "mosque-urgent", at(3, 4, 9)),
        ("sla.met", "resolution", 1, "mosque-high", at(3, 4, 12)),
    ]

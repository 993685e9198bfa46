"""Properties of business-time arithmetic and of the SLA engine (hypothesis)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Event, new_event
from tawasul.domain import sla
from tawasul.domain.calendars import BusinessCalendar, to_us
from tawasul.domain.policies import PolicyBook, load_policies_text
from tawasul.domain.sla import TicketSla

DUBAI = ZoneInfo("Asia/Dubai")
WEEK = {
    "mon": ["07:30-15:30"],
    "tue": ["07:30-15:30"],
    "wed": ["07:30-15:30"],
    "thu": ["07:30-15:30"],
    "fri": ["07:30-12:00"],
}
RAMADAN = {d: ["09:00-14:30"] for d in ("mon", "tue", "wed", "thu")} | {"fri": ["09:00-12:00"]}
CALENDARS = {
    "gov": BusinessCalendar(
        name="gov", hours=WEEK, ramadan_hours=RAMADAN, holidays_country="AE", closed=[date(2025, 12, 3)]
    ),
    "split": BusinessCalendar(
        name="split", timezone="Europe/Berlin", hours={"mon": ["08:00-12:00", "13:00-17:00"], "sat": ["22:00-24:00"]}
    ),
    "always": BusinessCalendar(name="always", always_open=True),
}
POLICIES = """
calendars:
  gov:
    hours: {mon: ["07:30-15:30"], tue: ["07:30-15:30"], wed: ["07:30-15:30"], thu: ["07:30-15:30"],
            fri: ["07:30-12:00"]}
    holidays: {country: AE}
    ramadan_hours: {mon: ["09:00-14:30"], tue: ["09:00-14:30"], wed: ["09:00-14:30"], thu: ["09:00-14:30"],
                    fri: ["09:00-12:00"]}
  always: {always_open: true}
policies:
  - {name: urgent, match: {priority: urgent}, calendar: always, first_response: 1h, resolution: 4h}
  - {name: standard, match: {channel: crm}, calendar: gov, first_response: 4h, resolution: 24h}
"""
BOOK: PolicyBook = load_policies_text(POLICIES)
START = datetime(2024, 12, 1, tzinfo=DUBAI)

instants = st.integers(min_value=0, max_value=2 * 366 * 86400).map(lambda s: START + timedelta(seconds=s))
durations = st.integers(min_value=0, max_value=400 * 3600).map(lambda s: timedelta(seconds=s))
calendars = st.sampled_from(sorted(CALENDARS))


@settings(max_examples=300, deadline=None)
@given(name=calendars, start=instants, business=durations)
def test_elapsed_inverts_add(name: str, start: datetime, business: timedelta) -> None:
    cal = CALENDARS[name]
    end = cal.add(start, business)
    assert end >= start
    assert cal.elapsed(start, end) == business
    if business:  # the earliest such instant: one second earlier, less has elapsed
        assert cal.elapsed(start, end - timedelta(seconds=1)) < business


@settings(max_examples=300, deadline=None)
@given(name=calendars, points=st.lists(instants, min_size=3, max_size=3))
def test_elapsed_is_additive(name: str, points: list[datetime]) -> None:
    a, b, c = sorted(points)
    cal = CALENDARS[name]
    assert cal.elapsed(a, c) == cal.elapsed(a, b) + cal.elapsed(b, c)
    assert cal.elapsed(c, a) == timedelta(0)


@settings(max_examples=200, deadline=None)
@given(name=calendars, start=instants, first=durations, second=durations.filter(bool))
def test_add_composes(name: str, start: datetime, first: timedelta, second: timedelta) -> None:
    cal = CALENDARS[name]
    assert cal.add(cal.add(start, first), second) == cal.add(start, first + second)


@settings(max_examples=300, deadline=None)
@given(name=calendars, start=instants, business=durations, extra_us=st.integers(0, 999_999))
def test_limit_is_the_last_instant_within_the_business_time(
    name: str, start: datetime, business: timedelta, extra_us: int
) -> None:
    cal = CALENDARS[name]
    a = to_us(start)
    d = business // timedelta(microseconds=1) + extra_us
    reached, exceeded = cal.limit_us(a, d)
    assert reached == cal.add_us(a, d)
    assert exceeded == cal.add_us(a, d + 1)
    assert cal.elapsed_us(a, exceeded - 1) == d and cal.elapsed_us(a, exceeded) == d + 1


CRM = {"channel": "crm", "kind": "request", "category": "certificates", "priority": "normal"}
ticket_instants = st.integers(min_value=0, max_value=30 * 86400).map(lambda s: START + timedelta(seconds=s))


def event(kind: str, when: datetime, data: dict[str, object] | None = None, n: int = 0) -> Event:
    return new_event(f"ticket.{kind}", "T-1", when, data or {}, "/tests/properties", id=f"e{n}-{kind}")


@settings(max_examples=150, deadline=None)
@given(opened=ticket_instants, pause=st.integers(0, 20 * 86400), length=st.integers(0, 10 * 86400))
def test_pausing_never_makes_a_deadline_earlier(opened: datetime, pause: int, length: int) -> None:
    paused_at = opened + timedelta(seconds=pause)
    plain, _ = sla.apply(None, event("opened", opened, CRM), BOOK)
    paused = plain
    for n, (kind, when) in enumerate([("paused", paused_at), ("resumed", paused_at + timedelta(seconds=length))]):
        paused, _ = sla.apply(paused, event(kind, when, {"reason": "x"} if kind == "paused" else None, n + 1), BOOK)
    later = opened + timedelta(days=400)
    for target in ("first_response", "resolution"):
        without = sla.evaluate(plain, later, BOOK)[target].deadline
        with_pause = sla.evaluate(paused, later, BOOK)[target].deadline
        assert without is not None and with_pause is not None and with_pause >= without
    nd_plain, nd_paused = sla.next_deadline(plain), sla.next_deadline(paused)
    assert nd_plain is not None and nd_paused is not None and nd_paused >= nd_plain


KINDS = ["acknowledged", "paused", "resumed", "resolved", "reopened", "priority_changed", "closed", "assigned"]
ticket_events = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 15 * 86400)), min_size=1, max_size=9)


def build(opened: datetime, steps: list[tuple[str, int]]) -> list[Event]:
    events = [event("opened", opened, CRM)]
    for n, (kind, offset) in enumerate(steps, start=1):
        data: dict[str, object] = {}
        if kind == "paused":
            data = {"reason": "waiting_on_customer"}
        elif kind == "priority_changed":
            data = {"priority": "urgent" if n % 2 else "normal"}
        events.append(event(kind, opened + timedelta(seconds=offset - 3600), data, n))
    return events


def fold(events: list[Event]) -> TicketSla:
    state: TicketSla | None = None
    for e in events:
        state, _ = sla.apply(state, e, BOOK)
    assert state is not None
    return state


@settings(max_examples=150, deadline=None)
@given(opened=ticket_instants, steps=ticket_events, data=st.data())
def test_any_arrival_order_gives_the_same_evaluation(
    opened: datetime, steps: list[tuple[str, int]], data: st.DataObject
) -> None:
    events = build(opened, steps)
    shuffled = data.draw(st.permutations(events))
    a, b = fold(events), fold(shuffled)
    assert a.marks == b.marks and a.ignored_after_close == b.ignored_after_close
    for days in (0.5, 1, 3, 10, 40):
        when = opened + timedelta(days=days)
        assert sla.evaluate(a, when, BOOK) == sla.evaluate(b, when, BOOK)
    assert TicketSla.from_dict(b.to_dict()) == b


@settings(max_examples=100, deadline=None)
@given(opened=ticket_instants, steps=ticket_events, checks=st.lists(st.integers(0, 20 * 86400), max_size=6))
def test_breach_and_warning_fire_at_most_once_and_never_early(
    opened: datetime, steps: list[tuple[str, int]], checks: list[int]
) -> None:
    state: TicketSla | None = None
    seen: list[sla.SlaOutcome] = []
    now = opened
    for e in sorted(build(opened, steps), key=lambda x: x.time):
        state, out = sla.apply(state, e, BOOK)
        seen += out
    assert state is not None
    for offset in sorted(checks):
        now = opened + timedelta(seconds=offset)
        nd = sla.next_deadline(state)
        state, out = sla.due(state, now, BOOK)
        assert all(o.at <= now for o in out)
        assert (nd is not None and nd <= now) or not out
        seen += out
    ids = [o.id for o in seen]
    assert len(ids) == len(set(ids))
    for target in ("first_response", "resolution"):
        assert sum(o.type == "sla.breached" and o.target == target for o in seen) <= 1
        assert sum(o.type == "sla.warning" and o.target == target for o in seen) <= 1


def test_the_property_calendars_behave_as_configured() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # daylight saving starts on Sunday 30 March 2025
    assert CALENDARS["split"].elapsed(
        datetime(2025, 3, 29, 21, tzinfo=berlin), datetime(2025, 3, 31, 9, tzinfo=berlin)
    ) == timedelta(hours=3)
    # 1-8 Dec 2024: National Day on Mon 2 and Tue 3 Dec, then Wed, Thu and a short Friday
    assert CALENDARS["gov"].elapsed(START, START + timedelta(days=7)) == timedelta(hours=20, minutes=30)

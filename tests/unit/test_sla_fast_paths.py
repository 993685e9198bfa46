"""The engine's shortcuts give exactly what the plain derivations give (hypothesis).

Each fast path is compared with a plain reference: `sla.apply` with `reference_apply` (which
re-derives everything after every event), `sla.due_us` and `sla.evaluate_us` with `sla.due` and
`sla.evaluate`, `build_timeline` with the one-pass `reference_build_timeline`, the calendar's
cached local dates with `datetime.fromtimestamp`.
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Event
from stream_processors import ticket_state as ticket_state_module
from tawasul.domain import sla
from tawasul.domain.calendars import BusinessCalendar, from_us, to_us
from tawasul.domain.sla import TicketSla
from tawasul.domain.sla_state import SlaOutcome
from tawasul.domain.sla_timeline import (
    ACKNOWLEDGED,
    CLOSED,
    OPENED,
    PAUSED,
    PRIORITY,
    RANKS,
    REOPENED,
    RESOLVED,
    RESUMED,
    Clock,
    Mark,
    Timeline,
    build_timeline,
)
from tests.unit.test_sla_properties import BOOK, build, fold, ticket_events, ticket_instants


def reference_apply(state: TicketSla | None, event: Event) -> tuple[TicketSla, list[SlaOutcome]]:
    """`sla.apply` as it was: every new event re-derives the outcomes and the next deadline."""
    if state is None:
        state = TicketSla(ticket_id=str(event.subject))
    rank = RANKS.get(str(event.type))
    if rank is None or state.has_event(str(event.id)):
        return state, []
    mark = sla.mark_of(event, rank)
    marks = list(state.marks)
    if marks and marks[-1][1] == CLOSED and mark > marks[-1]:
        return replace(state, ignored=tuple(sorted((*state.ignored, mark[2])))), []
    bisect.insort(marks, mark)
    ignored = state.ignored
    if rank == CLOSED:
        cut = next(i for i, m in enumerate(marks) if m[1] == CLOSED) + 1
        ignored = tuple(sorted((*ignored, *(m[2] for m in marks[cut:]))))
        marks = marks[:cut]
    return sla._advance(TicketSla(state.ticket_id, tuple(marks), state.fired, ignored, state.next_fire), BOOK, None)


def reference_due(state: TicketSla, now: datetime) -> tuple[TicketSla, list[SlaOutcome]]:
    now_us = to_us(now)
    if state.next_fire is None or state.next_fire > now_us:
        return state, []
    return sla._advance(state, BOOK, now_us)


@settings(max_examples=300, deadline=None)
@given(opened=ticket_instants, steps=ticket_events, data=st.data())
def test_apply_and_due_match_the_reference(opened: datetime, steps: list[tuple[str, int]], data: st.DataObject) -> None:
    events = data.draw(st.permutations(build(opened, steps)))
    events = events + data.draw(st.lists(st.sampled_from(events), max_size=3))  # repeats
    fast: TicketSla | None = None
    slow: TicketSla | None = None
    for e in events:
        fast, got = sla.apply(fast, e, BOOK)
        slow, want = reference_apply(slow, e)
        assert (fast, got) == (slow, want)
        offset = data.draw(st.one_of(st.none(), st.integers(-86400, 20 * 86400)))
        if offset is not None:
            now = e.time + timedelta(seconds=offset)
            fast, got = sla.due_us(fast, to_us(now), BOOK)
            slow, want = reference_due(slow, now)
            assert (fast, got) == (slow, want)
            assert sla.due(fast, now, BOOK) == sla.due_us(fast, to_us(now), BOOK)


ZONES = [
    "Asia/Dubai",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Asia/Beirut",
    "America/Havana",
    "Pacific/Chatham",
    "America/St_Johns",
    "UTC",
]
CAL_BY_ZONE = {
    z: BusinessCalendar(name=z, timezone=z, hours={"mon": ["08:00-16:00"], "sun": ["22:00-24:00"]}) for z in ZONES
}


@settings(max_examples=1000, deadline=None)
@given(zone=st.sampled_from(ZONES), us=st.integers(0, 60 * 366 * 86400 * 10**6))
def test_cached_local_dates_match_fromtimestamp(zone: str, us: int) -> None:
    cal = CAL_BY_ZONE[zone]
    want = datetime.fromtimestamp(us // 1_000_000, ZoneInfo(zone)).date()
    assert cal._local_ordinal(us) == want.toordinal()
    assert cal._day_at(want.toordinal()) == cal._day(want)


def test_local_dates_around_midnight_transitions() -> None:
    """Every second around offset changes at local midnight (Beirut, Havana) and half-hour zones."""
    for zone, start in [
        ("Asia/Beirut", datetime(2024, 10, 26, 20, 0, tzinfo=UTC)),
        ("America/Havana", datetime(2024, 11, 3, 3, 0, tzinfo=UTC)),
        ("Australia/Lord_Howe", datetime(2024, 4, 6, 14, 0, tzinfo=UTC)),
        ("Asia/Kolkata", datetime(2024, 4, 6, 17, 0, tzinfo=UTC)),
        # 00:01 NDT -> 23:01 NST: the local date moves on and back within one UTC hour
        ("America/St_Johns", datetime(2008, 11, 2, 1, 0, tzinfo=UTC)),
    ]:
        cal, tz = CAL_BY_ZONE[zone], ZoneInfo(zone)
        first = to_us(start)
        for second in range(0, 4 * 3600, 7):
            us = first + second * 1_000_000
            assert cal._local_ordinal(us) == datetime.fromtimestamp(us // 1_000_000, tz).toordinal()


def reference_build_timeline(marks: tuple[Mark, ...], until: int | None = None) -> Timeline | None:
    """`build_timeline` as it was: one pass testing `until` on every mark."""
    opened = next((m for m in marks if m[1] == OPENED and (until is None or m[0] < until)), None)
    if opened is None or not isinstance(opened[3], tuple):
        return None
    t0, profile = opened[0], opened[3]
    first, res = Clock(start=t0), Clock(start=t0)
    priority, paused, cycle = profile[3], False, 0
    for mark in marks:
        if until is not None and mark[0] >= until:
            break
        rank, at = mark[1], max(mark[0], t0)
        if rank == PRIORITY and isinstance(mark[3], str):
            priority = mark[3]
        elif rank == PAUSED and not paused:
            paused = True
            first.halt(at, 0)
            res.halt(at, cycle)
        elif rank == RESUMED and paused:
            paused = False
            if not first.done:
                first.start = at
            if not res.done:
                res.start = at
        elif rank == ACKNOWLEDGED:
            first.stop(at, 0, priority)
        elif rank in (RESOLVED, CLOSED):
            first.stop(at, 0, priority)
            res.stop(at, cycle, priority)
            if rank == CLOSED:
                break
        elif rank == REOPENED and res.done:
            res.done = False
            cycle += 1
            if not paused:
                res.start = at
    for clock in (first, res):
        if clock.start is not None:
            clock.segments.append((clock.start, None, cycle))
    return Timeline(t0, profile, priority, paused, {"first_response": first, "resolution": res})


@settings(max_examples=300, deadline=None)
@given(
    opened=ticket_instants,
    steps=ticket_events,
    cuts=st.lists(st.integers(-2 * 86400, 16 * 86400), max_size=4),
    data=st.data(),
)
def test_build_timeline_matches_the_reference(
    opened: datetime, steps: list[tuple[str, int]], cuts: list[int], data: st.DataObject
) -> None:
    events = build(opened, steps)
    if data.draw(st.booleans()):
        events = events[1:]  # never opened
    marks = tuple(sorted(sla.mark_of(e, RANKS[e.type]) for e in events))
    assert build_timeline(marks) == reference_build_timeline(marks)
    for cut in cuts:
        until = to_us(opened) + cut * 1_000_000
        for edge in (until, *(m[0] for m in marks)):  # also exactly at a mark's time
            assert build_timeline(marks, edge) == reference_build_timeline(marks, edge)
            assert sla.evaluate_us(fold(events), edge, BOOK) == sla.evaluate(
                fold(events), datetime.fromtimestamp(0, UTC) + timedelta(microseconds=edge), BOOK
            )


@given(us=st.integers(0, 4_000_000_000 * 10**6))
def test_ticket_state_instants_are_utc_iso(us: int) -> None:
    assert ticket_state_module._iso(us) == from_us(us, UTC).isoformat()  # type: ignore[arg-type]


TRICKY_ZONES = [
    "America/St_Johns",
    "Asia/Beirut",
    "America/Havana",
    "America/Santiago",
    "America/Asuncion",
    "Asia/Gaza",
    "Asia/Tehran",
    "Atlantic/Azores",
    "Africa/Cairo",
    "Asia/Amman",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Europe/Berlin",
    "Pacific/Apia",
]


def test_local_dates_around_every_offset_change_1970_2040() -> None:
    """Every offset change of zones that change near midnight or by odd amounts: the cached local
    date of each half minute within 90 minutes of it is the one `fromtimestamp` gives."""
    for zone in TRICKY_ZONES:
        tz = ZoneInfo(zone)
        cal = BusinessCalendar(name=zone, timezone=zone, always_open=True)
        offset = datetime.fromtimestamp(0, tz).utcoffset()
        for day in range(70 * 366):
            lo, hi = day * 86400, (day + 1) * 86400
            if datetime.fromtimestamp(hi, tz).utcoffset() == offset:
                continue
            while hi - lo > 1:  # the first second with the new offset
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if datetime.fromtimestamp(mid, tz).utcoffset() == offset else (lo, mid)
            offset = datetime.fromtimestamp(hi, tz).utcoffset()
            for second in range(hi - 5400, hi + 5400, 30):
                want = datetime.fromtimestamp(second, tz).toordinal()
                assert cal._local_ordinal(second * 1_000_000 + 123) == want, (zone, second)

"""The stream steps of a ticket: live and replay give the same outcomes; replay is order-free."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Event, new_event
from stream_processors.sla_step import Stored, advance, decode, encode, live_event, next_at_of, replay_event
from stream_processors.ticket_state import ticket_state
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import PolicyBook, load_policies
from tawasul.domain.sla_state import SlaOutcome

POLICIES = """\
calendars:
  always: {timezone: Asia/Dubai, always_open: true}
policies:
  - name: fast
    match: {}
    calendar: always
    first_response: 10m
    resolution: 1h
    warn_at: 0.5
"""
T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
LATENESS = timedelta(minutes=5)


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PolicyBook:
    path: Path = tmp_path_factory.mktemp("policies") / "p.yaml"
    path.write_text(POLICIES)
    return load_policies(path)


def ev(kind: str, minutes: float, ticket: str = "T-1") -> Event:
    data: dict[str, str] = {}
    if kind == "ticket.opened":
        data = {"channel": "crm", "kind": "request", "category": "x.y", "priority": "normal"}
    elif kind == "ticket.paused":
        data = {"reason": "waiting_on_customer"}
    return new_event(kind, ticket, T0 + timedelta(minutes=minutes), data, "/test", id=f"{ticket}-{kind}-{minutes}")


def ids(outcomes: list[SlaOutcome]) -> list[tuple[str, str, datetime]]:
    return sorted((o.id, o.to_data()["deadline"], o.at) for o in outcomes)


def live(events: list[Event], book: PolicyBook, until: datetime) -> list[SlaOutcome]:
    """Live: each event processed at its own time, timer ticks every 30 s in between."""
    stored, out = decode(None, "T-1"), []
    clock = T0 - timedelta(minutes=1)
    for event in events:
        while clock + timedelta(seconds=30) < event.time:
            clock += timedelta(seconds=30)
            step = advance(stored, to_us(clock), book, replay=False)
            stored, out = step.stored, out + list(step.outcomes)
        step = live_event(stored, event, to_us(event.time), book)
        stored, out = step.stored, out + list(step.outcomes)
    step = advance(stored, to_us(until), book, replay=False)
    return out + list(step.outcomes)


def replay(events: list[Event], book: PolicyBook, until: datetime) -> list[SlaOutcome]:
    """Replay: arrival order as given, watermark = max time seen - lateness, then end of input."""
    stored, out, high = decode(None, "T-1"), [], None
    for event in events:
        high = event.time if high is None else max(high, event.time)
        step = replay_event(stored, event, to_us(high - LATENESS), book)
        stored, out = step.stored, out + list(step.outcomes)
        stored = decode(encode(stored), "T-1")  # every step goes through the table
    step = advance(stored, to_us(until), book, replay=True)
    assert step.stored.pending == ()
    return out + list(step.outcomes)


def test_warning_before_a_late_stop_is_kept_in_replay(book: PolicyBook) -> None:
    events = [ev("ticket.opened", 0), ev("ticket.acknowledged", 7)]  # warning at 5 min, ack within lateness
    until = T0 + timedelta(hours=2)
    expected = ids(live(events, book, until))
    assert [i[0] for i in expected] == [
        "T-1:first_response:sla.met:0",
        "T-1:first_response:sla.warning:0",
        "T-1:resolution:sla.breached:0",
        "T-1:resolution:sla.warning:0",
    ]
    assert ids(replay(events, book, until)) == expected


def test_pending_events_survive_encoding_and_set_the_next_instant(book: PolicyBook) -> None:
    step = replay_event(decode(None, "T-1"), ev("ticket.opened", 0), to_us(T0 - timedelta(hours=1)), book)
    assert step.changed and step.outcomes == ()
    raw = encode(step.stored)
    assert decode(raw, "T-1") == step.stored
    assert next_at_of(raw) == to_us(T0) == step.stored.next_at
    again = replay_event(step.stored, ev("ticket.opened", 0), None, book)
    assert again.duplicate and not again.changed


def test_ticket_state_message(book: PolicyBook) -> None:
    stored = Stored(decode(None, "T-1").sla)
    for event in (ev("ticket.opened", 0), ev("ticket.acknowledged", 2), ev("ticket.resolved", 70)):
        stored = live_event(stored, event, to_us(event.time), book).stored
    view = ticket_state(stored, to_us(T0 + timedelta(minutes=71)), book)
    assert view is not None
    assert view["status"] == "resolved" and view["policy"] == "fast" and view["version"] == 3
    assert view["targets"]["first_response"] == {
        "deadline": (T0 + timedelta(minutes=10)).astimezone(ZoneInfo("Asia/Dubai")).isoformat(),
        "state": "met",
        "warned": False,
        "breached": False,
    }
    assert view["targets"]["resolution"]["state"] == "breached"
    assert view["targets"]["resolution"]["breached"] and view["targets"]["resolution"]["warned"]
    assert view["resolved_at"] == (T0 + timedelta(minutes=70)).isoformat()


STORIES = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "ticket.acknowledged",
                "ticket.paused",
                "ticket.resumed",
                "ticket.resolved",
                "ticket.reopened",
                "ticket.assigned",
            ]
        ),
        st.integers(1, 120),
    ),
    max_size=6,
    unique_by=lambda t: t[1],
)


@settings(max_examples=60, deadline=None)
@given(story=STORIES, rnd=st.randoms(use_true_random=False))
def test_replay_equals_live_whatever_the_order_within_lateness(
    story: list[tuple[str, int]], rnd: object, book: PolicyBook
) -> None:
    events = [ev("ticket.opened", 0)] + [ev(kind, m) for kind, m in sorted(story, key=lambda t: t[1])]
    until = T0 + timedelta(hours=3)
    expected = ids(live(events, book, until))
    assert ids(replay(events, book, until)) == expected
    # shuffle within the lateness: an event may move before others up to 5 minutes later than it
    jitter = {e.id: timedelta(minutes=rnd.uniform(0, 4.9)) for e in events}  # type: ignore[attr-defined]
    shuffled = sorted(events, key=lambda e: e.time + jitter[e.id])
    assert ids(replay(shuffled, book, until)) == expected

"""Late events that change the truth, a policy's grace, and the live clock of a partition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import Event, decode_event, new_event
from stream_processors.clock import LiveClock
from stream_processors.outcome_event import encode_outcome
from stream_processors.sla_step import Stored, advance, decode, live_event
from stream_processors.ticket_state import ticket_state
from tawasul.domain import sla
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import PolicyBook, PolicyError, load_policies_text
from tawasul.domain.sla_state import SlaOutcome

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
S = timedelta(seconds=1)
OPENED = {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"}


def book(grace: str | None = None) -> PolicyBook:
    extra = f", grace: {grace}" if grace else ""
    return load_policies_text(f"""
calendars:
  always: {{always_open: true}}
policies:
  - {{name: quick, match: {{}}, calendar: always, first_response: 2m, resolution: 1h, warn_at: 0.5{extra}}}
""")


def ev(kind: str, when: datetime, ticket: str = "T-1") -> Event:
    data = OPENED if kind == "opened" else {}
    return new_event(f"ticket.{kind}", ticket, when, data, "/tests/corrections", id=f"{ticket}-{kind}")


def live(stored: Stored, event: Event, wall: datetime, policies: PolicyBook) -> tuple[Stored, list[SlaOutcome]]:
    step = live_event(stored, event, to_us(wall), policies)
    return step.stored, list(step.outcomes)


def tick(stored: Stored, wall: datetime, policies: PolicyBook) -> tuple[Stored, list[SlaOutcome]]:
    step = advance(stored, to_us(wall), policies, replay=False)
    return step.stored, list(step.outcomes)


def first_response(outcomes: list[SlaOutcome]) -> list[tuple[str, datetime, str | None]]:
    return [(o.type, o.at, o.withdrawn_id) for o in outcomes if o.target == "first_response"]


def test_an_acknowledgement_delivered_after_the_breach_withdraws_it_then_meets() -> None:
    policies = book()
    stored, out = live(decode(None, "T-1"), ev("opened", T0), T0, policies)
    stored, fired = tick(stored, T0 + 125 * S, policies)  # the wall clock passed warning and deadline
    out += fired
    stored, late = live(stored, ev("acknowledged", T0 + 90 * S), T0 + 270 * S, policies)  # 3 minutes late
    out += late
    assert first_response(out) == [
        ("sla.warning", T0 + 60 * S, None),
        ("sla.breached", T0 + 120 * S, None),
        ("sla.breach_withdrawn", T0 + 90 * S, "T-1:first_response:sla.breached:0"),
        ("sla.met", T0 + 90 * S, None),
    ]
    view = ticket_state(stored, to_us(T0 + 270 * S), policies)
    assert view is not None
    target = view["targets"]["first_response"]
    assert datetime.fromisoformat(target.pop("deadline")) == T0 + 120 * S
    assert target == {"state": "met", "warned": True, "breached": False}
    # the corrected state stands: the same events again, or a later tick, decide nothing more
    again, repeat = live(stored, ev("acknowledged", T0 + 90 * S), T0 + 300 * S, policies)
    later, more = tick(stored, T0 + 3600 * S, policies)
    assert repeat == [] and first_response(more) == []


def test_a_warning_the_late_event_precedes_is_withdrawn_too() -> None:
    policies = book()
    stored, _ = live(decode(None, "T-2"), ev("opened", T0, "T-2"), T0, policies)
    stored, _ = tick(stored, T0 + 125 * S, policies)
    stored, late = live(stored, ev("acknowledged", T0 + 30 * S, "T-2"), T0 + 130 * S, policies)
    assert [o.type for o in late if o.target == "first_response"] == [
        "sla.breach_withdrawn",
        "sla.warning_withdrawn",
        "sla.met",
    ]
    view = ticket_state(stored, to_us(T0 + 130 * S), policies)
    assert view is not None and view["targets"]["first_response"]["warned"] is False
    withdrawal = next(o for o in late if o.type == "sla.warning_withdrawn")
    event = decode_event(encode_outcome(withdrawal))  # a valid contract event, ids deterministic
    assert event.id == "T-2:first_response:sla.warning_withdrawn:0"
    assert event.data.withdrawn_id == "T-2:first_response:sla.warning:0"  # type: ignore[union-attr]


def test_a_late_event_that_confirms_the_breach_withdraws_nothing() -> None:
    policies = book()
    stored, _ = live(decode(None, "T-3"), ev("opened", T0, "T-3"), T0, policies)
    stored, _ = tick(stored, T0 + 125 * S, policies)
    stored, late = live(stored, ev("acknowledged", T0 + 122 * S, "T-3"), T0 + 130 * S, policies)
    assert first_response(late) == []
    view = ticket_state(stored, to_us(T0 + 130 * S), policies)
    assert view is not None and view["targets"]["first_response"]["state"] == "breached"


def test_grace_delays_firing_not_the_deadline() -> None:
    policies = book("2m")
    assert policies.policies[0].grace == timedelta(minutes=2)
    stored, _ = live(decode(None, "T-4"), ev("opened", T0, "T-4"), T0, policies)
    stored, early = tick(stored, T0 + 179 * S, policies)  # warning at 60 s + 2 min grace = 180 s
    assert early == []
    assert stored.next_at == to_us(T0 + 180 * S)
    stored, late = live(stored, ev("acknowledged", T0 + 90 * S, "T-4"), T0 + 200 * S, policies)
    assert first_response(late) == [("sla.warning", T0 + 60 * S, None), ("sla.met", T0 + 90 * S, None)]
    other, _ = live(decode(None, "T-5"), ev("opened", T0, "T-5"), T0, policies)
    other, fired = tick(other, T0 + 241 * S, policies)
    assert [(o.type, o.at, o.deadline) for o in fired] == [
        ("sla.warning", T0 + 60 * S, T0 + 120 * S),
        ("sla.breached", T0 + 120 * S, T0 + 120 * S),
    ]


def test_grace_must_be_a_duration() -> None:
    with pytest.raises(PolicyError, match=r"policies\[0\]\.grace"):
        book("soon")
    assert book().policies[0].grace == timedelta(0)


def test_replay_never_withdraws() -> None:
    """Replay reads event time: the same late acknowledgement gives met, nothing to withdraw."""
    policies = book()
    state, out = sla.apply(None, ev("opened", T0, "T-6"), policies)
    state, warned = sla.due(state, T0 + 90 * S - timedelta(microseconds=1), policies)
    state, more = sla.apply(state, ev("acknowledged", T0 + 90 * S, "T-6"), policies)
    more = warned + more
    state, due = sla.due(state, T0 + 3600 * S, policies)
    assert [o.type for o in [*out, *more, *due] if o.target == "first_response"] == ["sla.warning", "sla.met"]


US = 1_000_000


def test_live_clock_is_the_watermark_while_behind_the_end_offset() -> None:
    clock = LiveClock(lateness=timedelta(minutes=5))
    wall = 10_000 * US
    assert clock.now_us(0, 10, wall) is None  # nothing read, position unknown
    clock.start_at(0, 4)  # committed offset after a restart
    assert clock.now_us(0, 10, wall) is None
    clock.read(0, 4, event_us=9_000 * US, published_us=9_000 * US, wall_us=wall)
    assert clock.now_us(0, 10, wall) == 9_000 * US - 300 * US  # catching up: event time
    assert not clock.caught_up(0, None, wall)  # end offset unknown: not proven
    for offset in range(5, 10):
        clock.read(0, offset, event_us=9_100 * US, published_us=9_100 * US, wall_us=wall)
    assert clock.caught_up(0, 10, wall) and clock.now_us(0, 10, wall) == wall
    assert clock.now_us(0, 11, wall) == 9_100 * US - 300 * US  # a new event published: behind again
    clock.start_at(1, 7)
    assert clock.now_us(1, 7, wall) == wall  # restarted with nothing to read


def test_live_clock_keeps_event_time_while_history_is_read() -> None:
    clock = LiveClock(lateness=timedelta(minutes=5), settle=timedelta(seconds=5))
    wall = 200_000 * US
    clock.read(2, 0, event_us=wall - 86_400 * US, published_us=wall, wall_us=wall)  # a day old
    assert clock.now_us(2, 1, wall) == wall - 86_400 * US - 300 * US  # caught up, yet history
    assert clock.now_us(2, 1, wall + 4 * US) == wall - 86_400 * US - 300 * US
    assert clock.now_us(2, 1, wall + 5 * US) == wall + 5 * US  # settled: wall clock
    clock.read(2, 1, event_us=wall - 180 * US, published_us=wall, wall_us=wall)  # 3 min late: not history
    assert clock.now_us(2, 2, wall + 6 * US) == wall + 6 * US
    clock.read(2, 2, event_us=None, published_us=0, wall_us=wall)  # an invalid event counts
    assert clock.caught_up(2, 3, wall + 6 * US)
    clock.forget(2)
    assert clock.now_us(2, 3, wall) is None


def test_a_breach_true_under_the_priority_then_in_force_stands() -> None:
    """Urgent (1 min target) breached, lowered to normal (10 min), acknowledged at 5 min: the
    breach was true when it fired, so it is not withdrawn; the `sla.met` follows as before."""
    policies = load_policies_text("""
calendars:
  always: {always_open: true}
policies:
  - {name: urgent, match: {priority: urgent}, calendar: always, first_response: 1m, warn_at: 0.5}
  - {name: normal, match: {}, calendar: always, first_response: 10m, warn_at: 0.9}
""")
    urgent = {**OPENED, "priority": "urgent"}
    open_event = new_event("ticket.opened", "T-7", T0, urgent, "/tests/corrections", id="T-7-open")
    lowered = new_event("ticket.priority_changed", "T-7", T0 + 120 * S, {"priority": "normal"}, "/tests", id="T-7-p")
    stored, _ = live(decode(None, "T-7"), open_event, T0, policies)
    stored, fired = tick(stored, T0 + 90 * S, policies)
    stored, _ = live(stored, lowered, T0 + 120 * S, policies)
    stored, out = live(stored, ev("acknowledged", T0 + 300 * S, "T-7"), T0 + 300 * S, policies)
    assert [o.type for o in fired] == ["sla.warning", "sla.breached"]
    assert [o.type for o in out] == ["sla.met"]

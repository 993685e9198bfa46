"""Bounded SLA state (`tawasul.domain.sla_fold`): a ticket with many events keeps a small stored
value, the same outcomes and ticket states, and still drops every repeated event."""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Event, new_event
from stream_processors.sla_step import Stored, advance, decode, encode, folded, live_event
from stream_processors.ticket_state import ticket_state
from tawasul.domain import sla_fold
from tawasul.domain.calendars import to_us
from tawasul.domain.policies import PolicyBook
from tawasul.domain.sla_fold import digest_add, digest_has, false_positive_rate
from tests.unit.test_sla_step import T0, book  # noqa: F401  (the policy book fixture)

LATENESS_US = 5 * 60 * 1_000_000
MANY = 50_000 if os.environ.get("TAWASUL_TEST_FULL") == "1" else 20_000
DATA: dict[str, dict[str, str]] = {
    "ticket.opened": {"channel": "crm", "kind": "request", "category": "x.y", "priority": "normal"},
    "ticket.paused": {"reason": "waiting_on_customer"},
    "ticket.assigned": {"team": "complaints", "agent": "s-1"},
    "ticket.priority_changed": {"priority": "high"},
}


def ev(kind: str, seconds: float, number: int, ticket: str = "T-1") -> Event:
    return new_event(
        kind, ticket, T0 + timedelta(seconds=seconds), DATA.get(kind, {}), "/test", id=f"{ticket}-{number}"
    )


def churn(count: int) -> list[Event]:
    """A ticket opened, then `count` events one second apart: mostly reassignments, a pause and a
    resumption every 1,000 (and a redundant pause), acknowledgements, a priority change."""
    events = [ev("ticket.opened", 0, 0)]
    for number in range(1, count + 1):
        kind = "ticket.assigned"
        if number % 1000 == 0 or number % 5000 == 1:
            kind = "ticket.paused"
        elif number % 1000 == 400:
            kind = "ticket.resumed"
        elif number in (300, 700):
            kind = "ticket.acknowledged"
        elif number == 2500:
            kind = "ticket.priority_changed"
        events.append(ev(kind, number, number))
    return events


def run(events: list[Event], book: PolicyBook, *, fold: bool) -> tuple[list[tuple[str, str, datetime]], Stored, int]:
    """The live agent's steps (clock at each event's time), the stored value written and read
    back after every step, as in the table; returns (outcomes, last state, largest value)."""
    stored, outcomes, largest, now = decode(None, "T-1"), [], 0, 0
    for event in events:
        now = max(now, to_us(event.time))
        step = live_event(stored, event, now, book)
        outcomes.extend(step.outcomes)
        kept = folded(step.stored, LATENESS_US) if fold else step.stored
        raw = encode(kept)
        largest = max(largest, len(raw))
        stored = decode(raw, "T-1")
    final = advance(stored, now + 10 * 3_600_000_000, book, replay=False)
    outcomes.extend(final.outcomes)
    return sorted((o.id, o.to_data()["deadline"], o.at) for o in outcomes), final.stored, largest


def view(stored: Stored, book: PolicyBook) -> dict[str, Any] | None:
    return ticket_state(stored, to_us(T0 + timedelta(days=2)), book)


def test_folding_keeps_outcomes_and_ticket_state(book: PolicyBook) -> None:
    events = churn(3_000)
    plain, plain_state, plain_size = run(events, book, fold=False)
    small, small_state, small_size = run(events, book, fold=True)
    assert small == plain and small
    assert view(small_state, book) == view(plain_state, book)
    assert small_state.version == plain_state.version == len(events)
    assert small_state.sla.folded_marks > 2_500
    assert small_size < plain_size / 3


def test_ticket_with_many_events_keeps_a_small_state_and_drops_every_repeat(book: PolicyBook) -> None:
    events = churn(MANY)
    outcomes, stored, largest = run(events, book, fold=True)
    print(f"largest stored value of a ticket with {MANY} events: {largest} bytes")
    assert largest < 64 * 1024
    moving = [
        e for e in events if e.type != "ticket.assigned" and (int(e.id.split("-")[-1]) % 5000 != 1 or e.id == "T-1-1")
    ]  # no redundant pause
    assert outcomes == run(moving, book, fold=False)[0]  # the clock-moving events decide alone
    assert stored.version == len(events)
    for event in random.Random(15).sample(events, 2_000):  # redelivered: all still known
        step = live_event(stored, event, to_us(events[-1].time), book)
        assert step.duplicate and not step.outcomes


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "ticket.assigned",
                    "ticket.paused",
                    "ticket.resumed",
                    "ticket.acknowledged",
                    "ticket.resolved",
                    "ticket.reopened",
                    "ticket.priority_changed",
                    "ticket.opened",
                ]
            ),
            st.integers(0, 400),
            st.integers(0, 299),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_folding_every_step_changes_no_outcome_within_the_lateness(
    steps: list[tuple[str, int, int]], book: PolicyBook
) -> None:
    """Events in time order up to `lateness` out of order (each arrives at most 299 s late);
    folding at every step (FOLD_FROM 0) gives the outcomes and ticket state of no folding."""
    timed, clock = [(0, ev("ticket.opened", 0, 0))], 0
    for number, (kind, gap, late) in enumerate(steps, start=1):
        clock += gap
        timed.append((clock + late, ev(kind, clock, number)))
    arrival = [event for _, event in sorted(timed, key=lambda pair: pair[0])]
    original = sla_fold.FOLD_FROM
    sla_fold.FOLD_FROM = 0
    try:
        small, small_state, _ = run(arrival, book, fold=True)
    finally:
        sla_fold.FOLD_FROM = original
    plain, plain_state, _ = run(arrival, book, fold=False)
    assert small == plain
    assert view(small_state, book) == view(plain_state, book)
    assert small_state.version == plain_state.version


def test_digest_has_no_false_negative_and_its_rate_is_documented() -> None:
    ids = [f"evt-{n}" for n in range(5_000)]
    digest = digest_add(b"", ids)
    assert len(digest) == sla_fold.DIGEST_BITS // 8
    assert all(digest_has(digest, i) for i in ids)
    false = sum(digest_has(digest, f"other-{n}") for n in range(20_000)) / 20_000
    assert false < 2 * false_positive_rate(5_000) + 0.001
    assert round(false_positive_rate(6_300), 3) == 0.01

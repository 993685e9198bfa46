"""The KPI fold without a broker: the faust processor's per-message logic (`kpi_input.fold_batch`
over a table) and the replay's batch engine (`KpiBatch`) go through the same `KpiFold` and give
the same records and figures; unreadable and poison items, the live clock and expiry."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas import Event
from schemas.ticket_state import TicketStateMessage, ticket_state_from
from stream_processors.kpi_batch import KpiBatch
from stream_processors.kpi_input import EVENT, STATE, TableStore, decode_record, fold_batch, pack
from tawasul.domain.kpi_book import KpiBook, rebuild
from tawasul.domain.kpi_contributions import scope
from tawasul.domain.kpi_fold import DictStore, KpiFold
from tawasul.domain.kpi_records import KPI_EVENT_TYPES, apply, record_of
from tawasul.domain.kpi_rows import Row
from tawasul.domain.windows import to_us
from tests.unit.test_kpi_state import CONFIG, ev, simulated_day, state


def as_json(events: Iterable[Event]) -> list[bytes]:
    return [e.to_json() for e in events]


def every_row(book: KpiBook) -> list[Row]:
    return [row for where in sorted(book.scopes()) for row in book.window_rows(where)] + book.now_rows()


def ticket_states(events: list[Event]) -> list[dict[str, Any]]:
    """A state per opened ticket, a few breached, a later version closing every third one."""
    tickets = sorted({e.subject for e in events if e.type == "ticket.opened"})
    out = []
    for n, ticket in enumerate(tickets):
        target = {"state": "breached", "breached": True} if n % 5 == 0 else {"state": "running", "warned": n % 2 == 0}
        out.append(state(ticket, 1, resolution=target))
        if n % 3 == 0:
            out.append(state(ticket, 2, status="closed", resolution=target))
    return out


def test_the_faust_path_and_the_batch_engine_fold_to_the_same_records_and_figures() -> None:
    events = simulated_day("2025-03-04", 0.3)
    states = ticket_states(events)
    assert len(events) > 300 and len(states) > 20
    table: dict[bytes, bytes] = {}
    faust_path = KpiFold(KpiBook(CONFIG, 0), TableStore(table))
    encoded = as_json(events)
    for n, i in enumerate(range(0, len(encoded), 50)):  # the forwarder's batches, states in between
        assert fold_batch(faust_path, pack(encoded[i : i + 50]), EVENT) == []
        some = states[n * 5 : n * 5 + 5] if i + 50 < len(encoded) else states[n * 5 :]
        assert fold_batch(faust_path, pack(json.dumps(s).encode() for s in some), STATE) == []
        faust_path.expire()
    batch = KpiBatch(CONFIG)
    for event in events:
        batch.on_event(event)
    for view in states:
        batch.on_state(ticket_state_from(view))  # the batch engine hands over the typed message
    batch.settle()

    stored = {key.decode(): decode_record(value) for key, value in table.items()}
    assert stored == dict(batch.records) and len(stored) > 100
    assert faust_path.book.as_of_us == batch.book.as_of_us == max(to_us(e.time) for e in events)
    assert every_row(faust_path.book) == every_row(batch.book)
    opened = {r.scope: r.value for r in batch.book.now_rows() if r.figure == "tickets.open"}
    assert 0 < opened[()] < len({s["ticket_id"] for s in states})  # the closed ones left the backlog
    assert opened[(("sla_state", "breached"),)] > 0
    rebuilt = rebuild(CONFIG, [r for r in stored.values() if r is not None])  # a restart: the same figures
    assert every_row(rebuilt) == every_row(faust_path.book)


def test_unreadable_items_are_skipped_and_a_poison_item_is_returned_without_stopping_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table: dict[bytes, bytes] = {}
    fold = KpiFold(KpiBook(CONFIG, 0), TableStore(table))
    good = ev("call.offered", "C1", "10:00:00", {"queue": "general"})
    lone = as_json([ev("call.offered", "C2", "10:00:01", {"queue": "general"})])[0].replace(b'"C2"', b'"C\\ud800"')
    later = ev("call.answered", "C1", "10:00:05", {"queue": "general", "agent": "a-1"})
    items = [*as_json([good]), b'{"type": "call.offered"}', b"42", lone, *as_json([later])]
    assert fold_batch(fold, pack(items), EVENT) == []  # invalid events: skipped
    assert set(table) == {b"C1"}
    record = decode_record(table[b"C1"])
    assert record is not None and record.answered is not None and record.answered[3] == "a-1"
    answered = {r.key: r.value for r in fold.book.window_rows(()) if r.window == "15m"}
    assert answered["calls.offered|15m|"] == 1.0 and answered["calls.answered|15m|"] == 1.0

    broken = json.dumps(state("T0", 1)).replace('"version": 1', '"version": Infinity').encode()
    states = [b"1", b"{}", broken, json.dumps(state("T1", 1)).encode(), json.dumps(state("T2", 1)).encode()]
    step = fold.on_state

    def raising_on_t1(message: TicketStateMessage) -> bool:  # a step that raises: the poison path
        if message.ticket_id == "T1":
            raise OverflowError("a step that raises")
        return step(message)

    monkeypatch.setattr(fold, "on_state", raising_on_t1)
    poisoned = fold_batch(fold, pack(states), STATE)
    assert poisoned is not None and len(poisoned) == 1  # not an object, no ticket id, no integer version: skipped
    item, exc = poisoned[0]
    assert item["ticket_id"] == "T1" and isinstance(exc, OverflowError)
    assert set(table) == {b"C1", b"T2"}  # the item after the poison one was folded
    assert {(r.figure, r.scope): r.value for r in fold.book.now_rows()}[("tickets.open", ())] == 1.0
    assert fold_batch(fold, b'{"not": "an array"}', EVENT) is None
    assert set(table) == {b"C1", b"T2"}


def test_the_live_clock_moves_the_book_before_every_event() -> None:
    now = [to_us(datetime.fromisoformat("2025-03-04T10:00:30+04:00"))]
    store = DictStore()
    fold = KpiFold(KpiBook(CONFIG, now[0]), store, clock=lambda: now[0])
    assert fold.on_event(ev("call.offered", "C1", "10:00:00", {"queue": "general"}))
    assert fold.on_event(ev("survey.submitted", "X1", "10:00:10", {"score": 5, "scale": 5, "channel": "call"}))
    fold.settle()
    waiting = {(r.figure, r.scope): r.value for r in fold.book.now_rows()}
    assert waiting[("calls.longest_wait_seconds", ())] == 30.0 and waiting[("surveys.pending", ())] == 1.0
    assert fold.book.tally(scope(contact="unmatched"), "7d").responses == 0
    now[0] += CONFIG.survey_hold // timedelta(microseconds=1)  # a day later the survey's subject is still unknown
    assert not fold.on_event(ev("call.offered", "C1", "10:00:00", {"queue": "general"}))  # a duplicate
    assert fold.book.as_of_us == now[0]
    assert fold.book.tally(scope(contact="unmatched"), "7d").responses == 1
    assert {(r.figure, r.scope): r.value for r in fold.book.now_rows()}[("surveys.pending", ())] == 0.0


def test_expired_records_leave_the_table_and_the_book() -> None:
    table: dict[bytes, bytes] = {}
    fold = KpiFold(KpiBook(CONFIG, 0), TableStore(table))
    assert fold_batch(fold, pack(as_json([ev("call.offered", "C1", "10:00:00", {"queue": "general"})])), EVENT) == []
    assert fold.expire() == [] and set(table) == {b"C1"}
    year_later = ev("call.offered", "C2", "2026-03-04T10:00:00+04:00", {"queue": "general"})
    assert fold_batch(fold, pack(as_json([year_later])), EVENT) == []
    assert fold.expire() == ["C1"]
    assert set(table) == {b"C2"} and fold.store.get("C1") is None and len(fold.book) == 1


def test_record_of_builds_in_one_step_what_apply_folds_in_any_order() -> None:
    events = [e for e in simulated_day("2025-03-05", 0.2) if e.type in KPI_EVENT_TYPES]
    rng = random.Random(5)
    per_subject: dict[str, list[Event]] = {}
    for event in events + rng.sample(events, len(events) // 10):  # a tenth delivered twice
        per_subject.setdefault(event.subject, []).append(event)
    assert len(per_subject) > 50 and any(len(v) > 3 for v in per_subject.values())
    for subject, mine in per_subject.items():
        rng.shuffle(mine)
        folded = None
        for event in mine:
            folded = apply(folded, event)
        assert record_of(subject, mine) == folded
    assert record_of("X", [ev("ticket.acknowledged", "X", "10:00:00")]) is None

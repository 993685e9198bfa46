"""The snapshot pacer's rules, without a broker: which figures go out, and when."""

from __future__ import annotations

from datetime import datetime

from stream_processors.snapshots import SnapshotPacer
from tawasul.domain.calendars import to_us
from tawasul.domain.kpi_state import KpiBook, Row, apply
from tests.unit.test_kpi_state import CALLS, CONFIG, DAY, book_of, ev


def at(clock: str) -> int:
    return to_us(datetime.fromisoformat(f"{DAY}T{clock}+04:00"))


def pacer() -> SnapshotPacer:
    return SnapshotPacer(min_interval_s=0.0, slow_interval_s=0.0)


def test_only_changed_keys_go_out_again() -> None:
    book, subject = book_of(CALLS, "10:05:00"), pacer()
    assert len(subject.changed_rows(book)) > 20
    assert subject.changed_rows(book) == []  # same clock, nothing changed


def test_a_moved_clock_is_published_even_when_no_figure_changed() -> None:
    book, subject = KpiBook(CONFIG, 1_000_000), pacer()
    subject.changed_rows(book)
    book.advance(2_000_000, lambda subject: None)  # same minute: no window moves, nothing open
    rows = subject.changed_rows(book)
    assert [r.key for r in rows] == ["tickets.open|now|"] and rows[0].value == 0
    assert subject.changed_rows(book) == []  # said once per clock value


def test_the_clock_row_keeps_its_pace() -> None:
    book, subject = KpiBook(CONFIG, 1_000_000), SnapshotPacer(min_interval_s=3600.0, slow_interval_s=3600.0)
    subject.changed_rows(book)
    book.advance(2_000_000, lambda subject: None)
    assert subject.changed_rows(book) == []  # within the interval: held
    assert [r.key for r in subject.changed_rows(book, force=True)] == ["tickets.open|now|"]


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _offered(rows: list[Row]) -> float | None:
    return next((row.value for row in rows if row.key == "calls.offered|15m|queue=general"), None)


def test_a_slide_that_changed_nothing_holds_no_later_change_back() -> None:
    """At a minute boundary every scope is evaluated again; where no figure changed, nothing was
    published, so the next real change goes out at once rather than up to a second later."""
    clock = ManualClock()
    book, subject = book_of(CALLS, "10:05:00"), SnapshotPacer(min_interval_s=1.0, slow_interval_s=5.0, clock=clock)
    assert _offered(subject.changed_rows(book)) == 4
    clock.now = 5.0
    book.advance(at("10:06:30"), lambda subject: None)  # a minute boundary: the windows slide
    assert _offered(subject.changed_rows(book)) is None  # evaluated, unchanged: not published
    clock.now = 5.3
    book.update("C9", apply(None, ev("call.offered", "C9", "10:06:20", {"queue": "general"})))
    assert _offered(subject.changed_rows(book)) == 5  # at once


def test_a_published_scope_keeps_its_pace() -> None:
    clock = ManualClock()
    book, subject = book_of(CALLS, "10:05:00"), SnapshotPacer(min_interval_s=1.0, slow_interval_s=5.0, clock=clock)
    assert _offered(subject.changed_rows(book)) == 4
    clock.now = 0.4
    book.update("C9", apply(None, ev("call.offered", "C9", "10:04:50", {"queue": "general"})))
    assert _offered(subject.changed_rows(book)) is None  # published 0.4 s ago: held
    clock.now = 1.0
    assert _offered(subject.changed_rows(book)) == 5

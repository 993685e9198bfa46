"""The snapshot pacer's rules, without a broker: which figures go out, and when."""

from __future__ import annotations

from tawasul.domain.kpi_state import KpiBook, apply
from stream_processors.snapshots import SnapshotPacer
from tests.unit.test_kpi_state import CALLS, CONFIG, book_of, ev


def pacer() -> SnapshotPacer:
    return SnapshotPacer(min_interval_s=0.0, slow_interval_s=0.0)


def test_only_changed_keys_go_out_again() -> None:
    book, subject = book_of(CALLS, "10:05:00"), pacer()
    assert len(subject.changed_rows(book)) > 20
    assert subject.changed_rows(book) == []           # same clock, nothing changed


def test_a_moved_clock_is_published_even_when_no_figure_changed() -> None:
    book, subject = KpiBook(CONFIG, 1_000_000), pacer()
    subject.changed_rows(book)
    book.advance(2_000_000, lambda subject: None)      # same minute: no window moves, nothing open
    rows = subject.changed_rows(book)
    assert [r.key for r in rows] == ["tickets.open|now|"] and rows[0].value == 0
    assert subject.changed_rows(book) == []           # said once per clock value


def test_the_clock_row_keeps_its_pace() -> None:
    book, subject = KpiBook(CONFIG, 1_000_000), SnapshotPacer(min_interval_s=3600.0, slow_interval_s=3600.0)
    subject.changed_rows(book)
    book.advance(2_000_000, lambda subject: None)
    assert subject.changed_rows(book) == []           # within the interval: held
    assert [r.key for r in subject.changed_rows(book, force=True)] == ["tickets.open|now|"]


def test_window_slides_spread_over_calls_while_fresh_changes_go_out_at_once() -> None:
    """Live pacing: at a minute boundary every scope's windows slide; those evaluations are
    spread (a few scopes per call), but a scope an event just changed is not held behind them."""
    later = 20 * 60 * 1_000_000
    whole_book, book = book_of(CALLS, "10:05:00"), book_of(CALLS, "10:05:00")
    whole, spread = pacer(), SnapshotPacer(min_interval_s=0.0, slow_interval_s=0.0, slow_per_call=2)
    whole.changed_rows(whole_book)
    spread.changed_rows(book)
    whole_book.advance(whole_book.as_of_us + later, lambda subject: None)     # 20 minutes on
    book.advance(book.as_of_us + later, lambda subject: None)
    slid = {r.key for r in whole.changed_rows(whole_book)}
    assert len(book.scopes()) > 2
    first = spread.changed_rows(book)
    assert 0 < len({r.scope for r in first if r.window != "now"}) <= 2
    book.update("C9", apply(None, ev("call.offered", "C9", "10:25:00", {"queue": "fresh"})))
    fresh = spread.changed_rows(book)
    assert any(r.key == "calls.offered|15m|queue=fresh" for r in fresh), "a fresh change waited behind slides"
    seen = {r.key for r in first} | {r.key for r in fresh}
    for _ in range(50):
        seen |= {r.key for r in spread.changed_rows(book)}
    assert slid and slid <= seen, "every slid figure goes out in the end"

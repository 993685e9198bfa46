"""The snapshot pacer's rules, without a broker: which figures go out, and when."""

from __future__ import annotations

from tawasul.domain.kpi_state import KpiBook
from stream_processors.snapshots import SnapshotPacer
from tests.unit.test_kpi_state import CALLS, CONFIG, book_of


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

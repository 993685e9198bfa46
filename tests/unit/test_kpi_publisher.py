"""The snapshot publisher's pacing rules, without a broker: what it would send, and when."""

from __future__ import annotations

import asyncio

from tawasul.domain.kpi_state import KpiBook, Row
from tawasul.settings import Settings
from stream_processors.kpi_agent import SnapshotPublisher
from tests.unit.test_kpi_state import CALLS, CONFIG, book_of


class Recorder(SnapshotPublisher):
    """Keeps each batch instead of producing it."""

    def __init__(self) -> None:
        super().__init__(Settings(), "kpis", min_interval_s=0.0, slow_interval_s=0.0)
        self.sent: list[tuple[int, list[Row]]] = []

    async def _send(self, rows: list[Row], as_of_us: int) -> None:
        self.sent.append((as_of_us, rows))


def publish(publisher: Recorder, book: KpiBook) -> int:
    return asyncio.run(publisher.publish_due(book))


def test_only_changed_keys_go_out_again() -> None:
    book, publisher = book_of(CALLS, "10:05:00"), Recorder()
    first = publish(publisher, book)
    assert first > 20 and publisher.sent[0][0] == book.as_of_us
    assert publish(publisher, book) == 0           # same clock, nothing changed


def test_a_moved_clock_is_published_even_when_no_figure_changed() -> None:
    book, publisher = KpiBook(CONFIG, 1_000_000), Recorder()
    publish(publisher, book)
    sent_before = len(publisher.sent)
    book.advance(2_000_000, lambda subject: None)   # same minute: no window moves, nothing open
    assert publish(publisher, book) == 1
    assert len(publisher.sent) == sent_before + 1
    as_of, rows = publisher.sent[-1]
    assert as_of == 2_000_000 and [r.key for r in rows] == ["tickets.open|now|"] and rows[0].value == 0
    assert publish(publisher, book) == 0           # said once per clock value

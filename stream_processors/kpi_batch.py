"""The KPI aggregator of one replay over batches (as `kpi_agent.KpiProcessor` in replay mode).

A thin adapter over `tawasul.domain.kpi_fold.KpiFold` with the records in a dict: events and
ticket states are folded as they come, and `settle()` takes the changed records into the book
once per batch (moving its clock to the latest record time), then deletes the expired ones.
"""

from __future__ import annotations

from schemas import Event
from schemas.ticket_state import TicketStateMessage
from tawasul.domain.kpi_book import KpiBook
from tawasul.domain.kpi_fold import DictStore, KpiFold
from tawasul.domain.kpi_tallies import KpiConfig

__all__ = ["KpiBatch"]


class KpiBatch:
    """The KPI fold of a replay: records in memory, the book settled once per batch."""

    def __init__(self, config: KpiConfig) -> None:
        self.records = DictStore()
        self.fold = KpiFold(KpiBook(config, 0), self.records)
        self.book.now_dirty = True  # every `now` figure goes out at least once, as after a rebuild

    @property
    def book(self) -> KpiBook:
        return self.fold.book

    def on_event(self, event: Event) -> None:
        self.fold.on_event(event)

    def on_state(self, view: TicketStateMessage) -> None:
        self.fold.on_state(view)

    def settle(self) -> None:
        """Move the clock to the latest record time, take the changed records into the book, and
        delete the expired ones."""
        self.fold.settle()
        self.fold.expire()

"""The KPI fold, written once: events and ticket states into subject records and a `KpiBook`.

The faust processor (`stream_processors.kpi_agent`: records in a changelog-backed table) and
the replay's batch engine (`stream_processors.kpi_batch`: records in a dict) are adapters over
`KpiFold`, which holds the rules:

* an event or a ticket state changes its subject's record (`kpi_records.apply`,
  `kpi_ticket_state.apply_backlog`); an unchanged record changes nothing;
* changed records are written to the store, then taken into the book by `settle()`, after the
  book's clock moved to the latest record time (the event-time clock of a replay); with a
  `clock` (live: the wall clock), the book's clock moves to it before every event instead;
* `expire()` deletes the records no window needs any more, from the store and the book.

The faust processor settles after every item, the batch engine once per batch: the book only
keeps what the records imply, so both give the same figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from schemas import Event
from schemas.ticket_state import TicketStateMessage
from tawasul.domain.kpi_book import KpiBook
from tawasul.domain.kpi_records import KPI_EVENT_TYPES, SubjectRecord, apply
from tawasul.domain.kpi_ticket_state import apply_backlog, read_ticket_state

__all__ = ["DictStore", "KpiFold", "RecordStore"]


class RecordStore(Protocol):
    """Where the subject records live between events."""

    def get(self, subject: str) -> SubjectRecord | None: ...

    def put(self, record: SubjectRecord) -> None: ...

    def delete(self, subject: str) -> None: ...


class DictStore(dict[str, SubjectRecord]):
    """Records in memory (the replay's batch engine)."""

    def put(self, record: SubjectRecord) -> None:
        self[record.subject] = record

    def delete(self, subject: str) -> None:
        self.pop(subject, None)


class KpiFold:
    """Folds events and ticket states into the records of `store` and into `book`."""

    def __init__(self, book: KpiBook, store: RecordStore, clock: Callable[[], int] | None = None) -> None:
        self.book = book
        self.store = store
        self.clock = clock
        """The live clock (µs); None: the book follows the latest record time (replay)."""
        self._changed: set[str] = set()
        self._latest = 0

    def on_event(self, event: Event) -> bool:
        """Fold one event; True when its subject's record changed."""
        if self.clock is not None:
            self.book.advance(self.clock(), self.store.get)
        if event.type not in KPI_EVENT_TYPES:
            return False
        return self._keep(event.subject, apply(self.store.get(event.subject), event))

    def on_state(self, state: TicketStateMessage) -> bool:
        """Fold one ticket-state message; True when the ticket's record changed."""
        view = read_ticket_state(state)
        return self._keep(view.subject, apply_backlog(self.store.get(view.subject), view))

    def _keep(self, subject: str, new: SubjectRecord | None) -> bool:
        if new is None or new is self.store.get(subject):
            return False
        self.store.put(new)
        self._changed.add(subject)
        self._latest = max(self._latest, new.seen_us)
        return True

    def settle(self) -> None:
        """Take the changed records into the book (its clock first moved to the latest record time)."""
        if self.clock is None:
            self.book.advance(self._latest, self.store.get)
        changed, self._changed = self._changed, set()
        for subject in changed:
            self.book.update(subject, self.store.get(subject))

    def expire(self) -> list[str]:
        """Delete the records no window needs any more (checked once per day of clock); their subjects."""
        gone = self.book.expired()
        for subject in gone:
            self.store.delete(subject)
            self.book.update(subject, None)
        return gone

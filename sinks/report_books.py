"""Which policy book the report judges each ticket with.

* `--policies FILE` (a what-if): every ticket with FILE.
* Otherwise the stored books (`policy_books`): each ticket with the book whose hash its stored
  state records (`tickets.policies_sha256`); a ticket that records none, or an unknown one,
  with the period's main book (the one most of its tickets record, else the most recently
  used). A period processed with more than one book lists them all.
* A database that stores no book (built before books were recorded): the settings' policy
  file (`TAWASUL_POLICIES` or the shipped default), marked `"source": "file"`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, select

from sinks.db.models import Ticket
from sinks.db.policy_books import StoredBook, read_books
from tawasul.domain.period import Period
from tawasul.domain.policies import PolicyBook
from tawasul.infra.policy_books import read_policy_file

__all__ = ["BookPlan", "plan_books"]


@dataclass
class BookPlan:
    """The book of every ticket of the period, and how they were chosen."""

    source: str
    main: PolicyBook
    main_sha256: str
    main_name: str
    by_ticket: dict[str, PolicyBook] = field(default_factory=dict)
    books: list[tuple[StoredBook, int]] = field(default_factory=list)
    """Stored books the period's tickets record, with their ticket counts."""
    unrecorded: int = 0
    """Tickets of the period judged with the main book because they record no known book."""

    def book_for(self, ticket_id: str) -> PolicyBook:
        return self.by_ticket.get(ticket_id, self.main)

    def to_json(self) -> dict[str, Any]:
        """`{"source": "stored"|"what-if"|"file", "sha256", "name", ...}`; several books: `sha256`
        is null, `mixed` true and `books` lists them."""
        out: dict[str, Any] = {"source": self.source, "sha256": self.main_sha256, "name": self.main_name}
        if self.source == "stored":
            out["books"] = [{**b.to_json(), "tickets": n} for b, n in self.books]
            out["mixed"] = len(self.books) > 1
            if out["mixed"]:
                out["sha256"], out["name"] = None, None
            if self.unrecorded:
                out["unrecorded_tickets"] = self.unrecorded
        return out


def plan_books(engine: Engine, period: Period, what_if: Path | None, settings_path: Path) -> BookPlan:
    """The plan for the report of `period` (see the module docstring)."""
    if what_if is not None:
        policy = read_policy_file(what_if)
        return BookPlan("what-if", policy.book, policy.sha256, policy.name)
    stored = {sha: b for sha, b in read_books(engine).items() if b.book is not None}
    if not stored:
        policy = read_policy_file(settings_path)
        return BookPlan("file", policy.book, policy.sha256, policy.name)
    recorded = _recorded_hashes(engine, period)
    known = {ticket: sha for ticket, sha in recorded.items() if sha in stored}
    counts = Counter(known.values())
    if counts:
        main_sha = max(counts, key=lambda sha: (counts[sha], _recency(stored[sha])))
    else:
        main_sha = max(stored, key=lambda sha: _recency(stored[sha]))
    main = stored[main_sha]
    books = [(stored[sha], n) for sha, n in sorted(counts.items(), key=lambda item: stored[item[0]].first_used_at)]
    if not books:
        books = [(main, 0)]
    by_ticket = {ticket: stored[sha].book for ticket, sha in known.items()}
    unrecorded = len(recorded) - len(known)
    return BookPlan("stored", main.book, main.sha256, main.name, by_ticket, books, unrecorded)  # type: ignore[arg-type]  # `stored` keeps only books that are not None


def _recency(book: StoredBook) -> tuple[datetime, datetime, str]:
    """Orders books by last use, then first use (ties broken by hash)."""
    return book.last_used_at, book.first_used_at, book.sha256


def _recorded_hashes(engine: Engine, period: Period) -> dict[str, str | None]:
    """The recorded book hash of every stored ticket opened in the period."""
    if not inspect(engine).has_table(Ticket.__tablename__):
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(Ticket.ticket_id, Ticket.policies_sha256).where(
                Ticket.opened_at >= period.start, Ticket.opened_at < period.end
            )
        )
        return {ticket: sha for ticket, sha in rows}

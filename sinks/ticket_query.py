"""Read one ticket's SLA story material from the database and tell it with the right policy book.

The ticket's stored events (`events`, subject = ticket id), the outcomes the pipeline stored
(`sla_outcomes`), its stored state (`tickets`, `ticket_targets`), and the policy book: the
stored one whose hash the ticket's state records (else the most recently used stored book,
else the settings' file), or an explicit `--policies` file as a what-if.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from schemas import Event, InvalidEvent, parse_event
from sinks.db.engine import describe_error
from sinks.db.models import SlaOutcome, StoredEvent, Ticket, TicketTarget
from sinks.db.policy_books import StoredBook, read_books
from tawasul.domain.policies import PolicyBook
from tawasul.domain.sla_timeline import RANKS
from tawasul.domain.ticket_story import StoredOutcome, TicketStory, build_story, compare_outcomes
from tawasul.infra.policy_books import read_policy_file

__all__ = ["TicketNotFound", "TicketQueryError", "TicketRecords", "load_ticket", "story_json"]


class TicketQueryError(RuntimeError):
    """The ticket cannot be read from the database."""


class TicketNotFound(TicketQueryError):
    """No stored event has this ticket id as subject."""


@dataclass
class TicketRecords:
    """What the database holds about one ticket."""

    ticket_id: str
    events: list[Event]
    outcomes: list[StoredOutcome]
    ticket: dict[str, Any] | None
    targets: list[dict[str, Any]] = field(default_factory=list)
    books: dict[str, StoredBook] = field(default_factory=dict)

    @property
    def policies_sha256(self) -> str | None:
        """The hash of the book that produced the ticket's stored state (or its latest outcome)."""
        if self.ticket is not None and self.ticket.get("policies_sha256"):
            return str(self.ticket["policies_sha256"])
        hashes = [o.policies_sha256 for o in sorted(self.outcomes, key=lambda o: o.at) if o.policies_sha256]
        return hashes[-1] if hashes else None


def load_ticket(engine: Engine, ticket_id: str) -> TicketRecords:
    """Everything stored about `ticket_id`; raises `TicketNotFound` or `TicketQueryError`."""
    try:
        if not inspect(engine).has_table(StoredEvent.__tablename__):
            raise TicketQueryError(
                "the database has no events table yet: run `tawasul db upgrade` "
                "(or start `tawasul sink`) and store some events first"
            )
        with engine.connect() as connection:
            events = connection.execute(
                select(StoredEvent.id, StoredEvent.payload)
                .where(StoredEvent.subject == ticket_id, StoredEvent.type.in_(sorted(RANKS)))
                .order_by(StoredEvent.time, StoredEvent.id)
            ).all()
            outcomes = (
                connection.execute(select(SlaOutcome.__table__).where(SlaOutcome.ticket_id == ticket_id))
                .mappings()
                .all()
            )
            ticket = (
                connection.execute(select(Ticket.__table__).where(Ticket.ticket_id == ticket_id))
                .mappings()
                .one_or_none()
            )
            targets = (
                connection.execute(
                    select(TicketTarget.__table__)
                    .where(TicketTarget.ticket_id == ticket_id)
                    .order_by(TicketTarget.target)
                )
                .mappings()
                .all()
            )
        books = read_books(engine)
    except SQLAlchemyError as exc:
        raise TicketQueryError(f"reading ticket {ticket_id!r} failed: {describe_error(exc)}") from exc
    if not events:
        raise TicketNotFound(f"no stored event of ticket {ticket_id!r}")
    return TicketRecords(
        ticket_id,
        [_decode(i, p) for i, p in events],
        [
            StoredOutcome(o["id"], o["type"], o["target"], o["policy"], o["deadline"], o["time"], o["policies_sha256"])
            for o in outcomes
        ],
        None if ticket is None else dict(ticket),
        [dict(t) for t in targets],
        books,
    )


def _decode(event_id: str, payload: str) -> Event:
    try:
        return parse_event(json.loads(payload))
    except (ValueError, InvalidEvent) as exc:
        raise TicketQueryError(f"stored event {event_id!r} is not a valid event: {exc}") from exc


def choose_book(records: TicketRecords, what_if: Path | None, settings_path: Path) -> tuple[PolicyBook, dict[str, Any]]:
    """The book to tell the story with and how it was chosen (`{"source", "sha256", "name"}`)."""
    if what_if is not None:
        policy = read_policy_file(what_if)
        return policy.book, {"source": "what-if", "sha256": policy.sha256, "name": policy.name}
    usable = {sha: b for sha, b in records.books.items() if b.book is not None}
    sha = records.policies_sha256
    if sha in usable:
        stored = usable[sha]
        return stored.book, {"source": "stored", "sha256": sha, "name": stored.name}  # type: ignore[return-value]  # `usable` keeps only books that are not None
    if usable:
        latest = max(usable.values(), key=lambda b: (b.last_used_at, b.sha256))
        return latest.book, {
            "source": "stored",
            "sha256": latest.sha256,
            "name": latest.name,  # type: ignore[return-value]  # `usable` keeps only books that are not None
            "note": "the ticket records no known book: the most recently used stored book",
        }
    policy = read_policy_file(settings_path)
    return policy.book, {
        "source": "file",
        "sha256": policy.sha256,
        "name": policy.name,
        "note": "the database stores no policy book: the settings' policy file",
    }


def story_json(story: TicketStory, records: TicketRecords, policies: dict[str, Any]) -> dict[str, Any]:
    """The story's JSON with the book used, the stored state and the outcomes side by side."""
    out = story.to_json()
    out["policies"] = policies
    zone = story.at.tzinfo  # stored instants shown in the calendar's zone, as the story's
    out["stored"] = {
        "ticket": None if records.ticket is None else _plain(records.ticket, zone),
        "targets": [_plain(t, zone) for t in records.targets],
    }
    stored = [replace(o, deadline=o.deadline.astimezone(zone), at=o.at.astimezone(zone)) for o in records.outcomes]
    out["outcome_comparison"] = compare_outcomes(story.outcomes, stored)
    return out


def tell(records: TicketRecords, book: PolicyBook, at: datetime) -> TicketStory:
    """The story of the loaded ticket as of `at`."""
    return build_story(records.ticket_id, records.events, book, at)


def _plain(row: dict[str, Any], zone: tzinfo | None) -> dict[str, Any]:
    return {k: v.astimezone(zone).isoformat() if isinstance(v, datetime) else v for k, v in row.items()}

"""Policy books in the database: stored from `tawasul.policies`, read back for the report and
the ticket story.

`policy_books` keeps one row per book hash: its file name, YAML text, and first and last use
(a start of a worker or replay with it, or a stored batch of outcomes or ticket states carrying
its hash). The sink's writes are idempotent: a message stored twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite

from sinks.db.models import StoredPolicyBook
from sinks.db.records import BadRecord, Row, clean_text
from tawasul.domain.policies import PolicyBook, load_policies_text, policies_sha256

__all__ = ["PolicyBookRecord", "StoredBook", "decode_policy_book", "read_books", "store_books", "touch_books"]

_TABLE = cast(Table, StoredPolicyBook.__table__)  # a declarative model's table is a Table


@dataclass(frozen=True, slots=True)
class PolicyBookRecord:
    """A `tawasul.policies` message: a book and when a worker or replay started with it."""

    sha256: str
    name: str
    yaml: str
    used_at: datetime

    def row(self) -> Row:
        return {
            "sha256": self.sha256,
            "name": clean_text(self.name),
            "yaml": clean_text(self.yaml),
            "first_used_at": self.used_at,
            "last_used_at": self.used_at,
        }


def decode_policy_book(raw: bytes) -> PolicyBookRecord:
    """Read a `tawasul.policies` message; raises `BadRecord` naming what is wrong."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise BadRecord("policy book: not UTF-8 JSON") from None
    if not isinstance(body, Mapping):
        raise BadRecord("policy book: not a JSON object")
    text, sha, name = body.get("yaml"), body.get("sha256"), body.get("name")
    if not isinstance(text, str) or not isinstance(name, str) or not isinstance(sha, str):
        raise BadRecord("policy book: name, sha256 and yaml must be strings")
    if policies_sha256(text) != sha:
        raise BadRecord("policy book: sha256 is not the hash of its yaml")
    try:
        used_at = datetime.fromisoformat(str(body.get("used_at")))
    except ValueError:
        raise BadRecord("policy book: used_at must be an RFC 3339 timestamp") from None
    if used_at.tzinfo is None:
        raise BadRecord("policy book: used_at has no UTC offset")
    return PolicyBookRecord(sha, name, text, used_at)


def store_books(connection: Connection, rows: Sequence[Row]) -> int:
    """Insert new books; a known one widens its first and last use."""
    if not rows:
        return 0
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    written = 0
    for row in rows:
        base = insert(_TABLE).values(**row)
        statement = base.on_conflict_do_update(
            index_elements=["sha256"],
            set_={
                "first_used_at": func.least(_TABLE.c.first_used_at, base.excluded.first_used_at)
                if connection.dialect.name == "postgresql"
                else func.min(_TABLE.c.first_used_at, base.excluded.first_used_at),
                "last_used_at": func.greatest(_TABLE.c.last_used_at, base.excluded.last_used_at)
                if connection.dialect.name == "postgresql"
                else func.max(_TABLE.c.last_used_at, base.excluded.last_used_at),
            },
            where=(base.excluded.first_used_at < _TABLE.c.first_used_at)
            | (base.excluded.last_used_at > _TABLE.c.last_used_at),
        )
        written += max(connection.execute(statement).rowcount or 0, 0)
    return written


def touch_books(connection: Connection, hashes: Iterable[str | None], at: datetime) -> int:
    """Move the last use of these books to `at` (a batch of their outcomes or states was stored)."""
    written = 0
    for sha in sorted({h for h in hashes if h}):
        written += (
            connection.execute(
                update(_TABLE).where(_TABLE.c.sha256 == sha, _TABLE.c.last_used_at < at).values(last_used_at=at)
            ).rowcount
            or 0
        )
        written = max(written, 0)
    return written


@dataclass(frozen=True)
class StoredBook:
    """A stored policy book, parsed (`book` None when its YAML no longer validates)."""

    sha256: str
    name: str
    yaml: str
    first_used_at: datetime
    last_used_at: datetime
    book: PolicyBook | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "first_used_at": self.first_used_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat(),
        }


def read_books(engine: Engine) -> dict[str, StoredBook]:
    """Every stored book by hash, oldest first use first; empty before the table exists."""
    if not inspect(engine).has_table(_TABLE.name):
        return {}
    books: dict[str, StoredBook] = {}
    with engine.connect() as connection:
        for sha, name, text, first, last in connection.execute(
            select(
                _TABLE.c.sha256, _TABLE.c.name, _TABLE.c.yaml, _TABLE.c.first_used_at, _TABLE.c.last_used_at
            ).order_by(_TABLE.c.first_used_at, _TABLE.c.sha256)
        ):
            try:
                book, error = load_policies_text(text), None
            except ValueError as exc:
                book, error = None, str(exc)
            books[sha] = StoredBook(sha, name, text, first, last, book, error)
    return books

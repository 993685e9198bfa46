"""The batch database writer: buffer records with `add`, store them in one transaction with `flush`.

Records are what the sink reads from Kafka: input `Event`s (`tawasul.events`), SLA outcome
events (`tawasul.sla.outcomes`), KPI snapshot events (`tawasul.kpis`) and ticket states
(`tawasul.tickets.state`, a `TicketState` or its decoded JSON dict). Every write is an
idempotent upsert, so storing the same records again (a redelivered batch, a duplicate
event, an outcome repeated after a restart) changes nothing.

An input event whose id is already stored (or earlier in the batch) with OTHER content is a
conflicting duplicate: it is not stored and changes no call, visit or survey; `flush` returns
it in `FlushResult.conflicts` with both versions' digests (SHA-256 of canonical JSON), for the
sink to dead-letter. An identical repeat stays a silent no-op.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from schemas import Event
from sinks.db.contacts import CALLS, SPEC_BY_TYPE, finish_call, finish_visit, merge_event
from sinks.db.models import Base
from sinks.db.policy_books import PolicyBookRecord, store_books, touch_books
from sinks.db.records import (
    KPI_TYPE,
    SLA_TYPES,
    EventRecord,
    OutcomeRecord,
    Row,
    TicketState,
    event_row,
    kpi_row,
    survey_row,
)
from sinks.db.upserts import IN_LIST_CHUNK, Upserts

Record = EventRecord | OutcomeRecord | Event | TicketState | PolicyBookRecord
"""What the writer buffers: input events (as `EventRecord`), SLA outcomes (`OutcomeRecord` or
`Event`), KPI snapshot `Event`s, ticket states."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


CONFLICTING_DUPLICATE = "conflicting_duplicate"
"""The reason word of a conflicting duplicate's dead letter."""


def content_digest(payload: str) -> str:
    """SHA-256 (hex) of an event's canonical JSON: keys sorted, no spaces, UTF-8; the same for
    the same content however it was spelt. Text that is not JSON is hashed as it is."""
    try:
        canonical = json.dumps(json.loads(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        canonical = payload
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Conflict:
    """An input event whose id was stored with other content: not stored."""

    record: EventRecord
    stored_digest: str
    digest: str

    @property
    def reason(self) -> str:
        return (
            f"{CONFLICTING_DUPLICATE}: id {self.record.id[:200]!r} is already stored with other content "
            f"(stored sha256 {self.stored_digest}, this one sha256 {self.digest})"
        )


@dataclass(frozen=True)
class FlushResult:
    """What one `flush` stored: records flushed, rows inserted or changed per table, and the
    conflicting duplicates it refused."""

    records: int = 0
    rows: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    conflicts: tuple[Conflict, ...] = ()


@dataclass
class _Batch:
    """The rows of one flush, deduplicated as records are added."""

    stored_at: datetime
    events: dict[str, Row] = field(default_factory=dict)
    surveys: dict[str, Row] = field(default_factory=dict)
    outcomes: dict[str, Row] = field(default_factory=dict)
    kpis: dict[str, Row] = field(default_factory=dict)
    tickets: dict[str, TicketState] = field(default_factory=dict)
    calls: dict[str, Row] = field(default_factory=dict)
    visits: dict[str, Row] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    skip: frozenset[int] = frozenset()
    """`id()` of records left out (conflicting duplicates found against the database)."""
    books: list[Row] = field(default_factory=list)

    def add(self, record: Record) -> None:
        if isinstance(record, EventRecord):  # the most frequent first
            self._add_input(record)
            return
        if isinstance(record, OutcomeRecord):
            if record.id not in self.outcomes:
                self.outcomes[record.id] = record.row()
            return
        if isinstance(record, TicketState):
            held = self.tickets.get(record.ticket_id)
            if held is None or record.rank >= held.rank:
                self.tickets[record.ticket_id] = record
            return
        if isinstance(record, PolicyBookRecord):
            self.books.append(record.row())
            return
        kind = record.type
        if kind in SLA_TYPES:
            if record.id not in self.outcomes:
                self.outcomes[record.id] = OutcomeRecord.from_event(record).row()
            return
        if kind == KPI_TYPE:
            row = kpi_row(record)
            held_kpi = self.kpis.get(row["key"])
            if held_kpi is None or row["as_of"] >= held_kpi["as_of"]:
                self.kpis[row["key"]] = row
            return
        self._add_input(EventRecord.from_event(record))

    def _add_input(self, record: EventRecord) -> None:
        if id(record) in self.skip:
            return
        held = self.events.get(record.id)
        if held is not None:
            if held["payload"] != record.payload:
                stored, digest = content_digest(held["payload"]), content_digest(record.payload)
                if stored != digest:
                    self.conflicts.append(Conflict(record, stored, digest))
            return
        self.events[record.id] = event_row(record, self.stored_at)
        spec = SPEC_BY_TYPE.get(record.type)
        if spec is not None:
            merge_event(self.calls if spec is CALLS else self.visits, spec, record)
        elif record.type == "survey.submitted":
            self.surveys[record.id] = survey_row(record)


class DbWriter:
    """Buffers records and stores them in one transaction per `flush` (Quix-Streams sink style).

    Not thread-safe: one writer per consumer loop.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.engine = engine
        self._clock = clock
        self._pending: list[Record] = []
        self._batch: _Batch | None = None
        self._upserts = Upserts()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, record: Record | Mapping[str, Any]) -> None:
        """Buffer one record, turned into rows now: a malformed one raises here, not in `flush`.

        A ticket-state dict is parsed into a `TicketState` (raises `BadRecord` when malformed).
        """
        if type(record) is not EventRecord and type(record) is not OutcomeRecord:  # the sink's most frequent
            if not isinstance(record, EventRecord | OutcomeRecord | Event | TicketState | PolicyBookRecord):
                record = TicketState.from_dict(record)
            elif isinstance(record, Event) and record.type not in SLA_TYPES and record.type != KPI_TYPE:
                record = EventRecord.from_event(record)  # buffered as the sink reads it: checked against the database
        if self._batch is None:
            self._batch = _Batch(stored_at=self._clock())
        self._batch.add(record)
        self._pending.append(record)

    def take(self) -> list[Record]:
        """Remove and return the buffered records (to store them another way)."""
        taken, self._pending, self._batch = self._pending, [], None
        return taken

    def flush(self) -> FlushResult:
        """Store every buffered record in ONE transaction; the buffer is emptied only on success.

        Raises the database's error (`sqlalchemy.exc.SQLAlchemyError`) when the transaction
        fails; nothing of the batch is then stored and the records stay buffered.
        """
        batch = self._batch
        if batch is None:
            return FlushResult()
        started = time.perf_counter()
        tickets = [state.ticket_row() for state in batch.tickets.values()]
        targets = [row for state in batch.tickets.values() for row in state.target_rows()]
        upserts, tables = self._upserts, Base.metadata.tables
        rows: dict[str, int] = {}
        with self.engine.begin() as connection:
            rows["events"] = upserts.insert_new(connection, tables["events"], list(batch.events.values()))
            if rows["events"] < len(batch.events):
                batch = self._without_stored_conflicts(connection, batch)
            rows["calls"] = upserts.merge_calls(connection, [finish_call(r) for r in batch.calls.values()])
            rows["visits"] = upserts.merge_visits(connection, [finish_visit(r) for r in batch.visits.values()])
            rows["surveys"] = upserts.insert_new(connection, tables["surveys"], list(batch.surveys.values()))
            rows["sla_outcomes"] = upserts.insert_outcomes(connection, list(batch.outcomes.values()))
            rows["tickets"], rows["ticket_targets"] = upserts.upsert_tickets(connection, tickets, targets)
            rows["kpi_snapshots"] = upserts.upsert_kpis(connection, list(batch.kpis.values()))
            rows["policy_books"] = store_books(connection, batch.books) + touch_books(
                connection,
                [
                    *(r["policies_sha256"] for r in batch.outcomes.values()),
                    *(s.policies_sha256 for s in batch.tickets.values()),
                ],
                batch.stored_at,
            )
            if connection.dialect.name == "postgresql" and any(rows.values()):
                # delivered at commit: the wall display (LISTEN tawasul_changes) learns of new data
                connection.execute(text("SELECT pg_notify('tawasul_changes', '')"))
        records = len(self._pending)
        self._pending, self._batch = [], None
        elapsed = time.perf_counter() - started
        return FlushResult(
            records=records,
            rows={k: v for k, v in rows.items() if v},
            seconds=elapsed,
            conflicts=tuple(batch.conflicts),
        )

    def _without_stored_conflicts(self, connection: Connection, batch: _Batch) -> _Batch:
        """Some events of the batch were stored before: those stored with other content are
        conflicts, left out of the batch (rebuilt without them: no call, visit or survey row
        takes them in). Events of this batch read back here have its own content."""
        stored = _stored_payloads(connection, list(batch.events))
        conflicts = [
            Conflict(record, content_digest(stored[record.id]), content_digest(record.payload))
            for record in self._pending
            if isinstance(record, EventRecord) and record.id in stored and stored[record.id] != record.payload
        ]
        conflicts = [conflict for conflict in conflicts if conflict.stored_digest != conflict.digest]
        if not conflicts:
            return batch
        rebuilt = _Batch(stored_at=batch.stored_at, skip=frozenset(id(c.record) for c in conflicts))
        for record in self._pending:
            rebuilt.add(record)
        rebuilt.conflicts[:0] = conflicts
        return rebuilt


def _stored_payloads(connection: Connection, ids: Sequence[str]) -> dict[str, str]:
    """id -> stored payload of the events among `ids` that the table holds."""
    events = Base.metadata.tables["events"]
    out: dict[str, str] = {}
    for start in range(0, len(ids), IN_LIST_CHUNK):
        chunk = ids[start : start + IN_LIST_CHUNK]
        query = select(events.c.id, events.c.payload).where(events.c.id.in_(chunk))
        out.update((row_id, payload) for row_id, payload in connection.execute(query))
    return out

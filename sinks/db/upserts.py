"""Idempotent batch upserts, the same code on SQLite and PostgreSQL.

Each method takes a connection inside the caller's transaction and a list of rows (dicts
with every column of the table) and runs ONE `INSERT ... ON CONFLICT` over all of them (see
`bulk.py`). It returns the number of rows the database reports as inserted or changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    Table,
    and_,
    case,
    cast,
    delete,
    extract,
    func,
    literal_column,
    or_,
    select,
)

from sinks.db.bulk import BulkRunner
from sinks.db.contacts import CALLS, VISITS, ContactSpec
from sinks.db.models import Base, Call, KpiSnapshot, SlaOutcome, Ticket, TicketTarget, Visit
from sinks.db.records import Row, withdrawal_of, withdrawn_by

SqlValue = ColumnElement[Any]

IN_LIST_CHUNK = 500
"""Ids per `IN (...)` list (well under SQLite's and PostgreSQL's parameter limits)."""


def _table(model: type[Base]) -> Table:
    return Base.metadata.tables[model.__tablename__]


def _primary_key(table: Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


class Upserts:
    """The sink's statements, compiled once per dialect and run over whole batches (`BulkRunner`)."""

    def __init__(self) -> None:
        self._bulk = BulkRunner()

    def insert_new(self, connection: Connection, table: Table, rows: Sequence[Row]) -> int:
        """Append-only rows: `ON CONFLICT (primary key) DO NOTHING`."""

        def finish(base: Any) -> Any:
            return base.on_conflict_do_nothing(index_elements=_primary_key(table))

        return self._bulk.run(connection, f"insert_new:{table.name}", table, finish, rows)

    def insert_outcomes(self, connection: Connection, rows: Sequence[Row]) -> int:
        """SLA outcomes, append-only, keeping the final truth: a withdrawal (`sla.breach_withdrawn`,
        `sla.warning_withdrawn`) is stored and deletes the outcome it withdraws, and a warning or
        breach whose withdrawal is already stored (delivered again after it) is not kept."""
        table = _table(SlaOutcome)
        written = self.insert_new(connection, table, rows)
        doomed = {withdrawn for row in rows if (withdrawn := withdrawn_by(row["id"])) is not None}
        candidates = {withdrawal: row["id"] for row in rows if (withdrawal := withdrawal_of(row["id"])) is not None}
        keys = sorted(candidates)
        for start in range(0, len(keys), IN_LIST_CHUNK):
            found = connection.execute(select(table.c.id).where(table.c.id.in_(keys[start : start + IN_LIST_CHUNK])))
            doomed.update(candidates[withdrawal] for (withdrawal,) in found)
        ids = sorted(doomed)
        for start in range(0, len(ids), IN_LIST_CHUNK):
            connection.execute(delete(table).where(table.c.id.in_(ids[start : start + IN_LIST_CHUNK])))
        return written

    def upsert_newer(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[Row],
        order_column: str,
        *,
        tie_column: str | None = None,
    ) -> int:
        """Current-state rows: replace the stored row only when `order_column` is newer.

        With `tie_column`, a row whose `order_column` equals the stored one replaces it when
        its `tie_column` differs (another message with the same order value: the later one
        wins); the very same row delivered again changes nothing.
        """

        def finish(base: Any) -> Any:
            keys = set(_primary_key(table))
            stored, incoming = table.c[order_column], base.excluded[order_column]
            newer = incoming > stored
            if tie_column is not None:
                newer = or_(newer, and_(incoming == stored, base.excluded[tie_column] != table.c[tie_column]))
            return base.on_conflict_do_update(
                index_elements=sorted(keys),
                set_={c.name: base.excluded[c.name] for c in table.columns if c.name not in keys},
                where=newer,
            )

        return self._bulk.run(connection, f"upsert_newer:{table.name}:{order_column}:{tie_column}", table, finish, rows)

    def upsert_tickets(self, connection: Connection, tickets: Sequence[Row], targets: Sequence[Row]) -> tuple[int, int]:
        """Ticket states and their targets; a state never replaces one with a higher `version`.

        Targets carry the version of the state they came with; afterwards any target older
        than its ticket's stored version (a target the newer state no longer has, or one a
        late message inserted) is removed. Returns the ticket and target rows written.
        """
        ticket_table, target_table = _table(Ticket), _table(TicketTarget)
        written = self.upsert_newer(connection, ticket_table, tickets, "version")
        written_targets = self._upsert_targets(connection, target_table, targets)
        ids = sorted({row["ticket_id"] for row in tickets})
        current = (
            select(ticket_table.c.version).where(ticket_table.c.ticket_id == target_table.c.ticket_id).scalar_subquery()
        )
        for start in range(0, len(ids), IN_LIST_CHUNK):
            chunk = ids[start : start + IN_LIST_CHUNK]
            connection.execute(
                delete(target_table).where(target_table.c.ticket_id.in_(chunk), target_table.c.version < current)
            )
        return written, written_targets

    def _upsert_targets(self, connection: Connection, table: Table, rows: Sequence[Row]) -> int:
        """A target replaces the stored one of a lower version, or of the same version with less
        progress (`kpi_state.target_progress`: a warning or breach fired by the clock since)."""

        def finish(base: Any) -> Any:
            incoming = base.excluded
            later = or_(
                incoming.version > table.c.version,
                and_(
                    incoming.version == table.c.version,
                    _progress(incoming.warned, incoming.breached) > _progress(table.c.warned, table.c.breached),
                ),
            )
            return base.on_conflict_do_update(
                index_elements=_primary_key(table),
                set_={c.name: incoming[c.name] for c in table.columns if not c.primary_key},
                where=later,
            )

        return self._bulk.run(connection, "upsert_targets", table, finish, rows)

    def upsert_kpis(self, connection: Connection, rows: Sequence[Row]) -> int:
        """KPI snapshots: the newest `as_of` per key wins (equal `as_of`: the later snapshot event)."""
        return self.upsert_newer(connection, _table(KpiSnapshot), rows, "as_of", tie_column="event_id")

    def merge_calls(self, connection: Connection, rows: Sequence[Row]) -> int:
        """Call rows merged into the stored ones (earliest times, first non-null values)."""
        return self._merge_contacts(connection, CALLS, _table(Call), rows, _call_derived)

    def merge_visits(self, connection: Connection, rows: Sequence[Row]) -> int:
        """Visit rows merged into the stored ones (earliest times, first non-null values)."""
        return self._merge_contacts(connection, VISITS, _table(Visit), rows, _visit_derived)

    def _merge_contacts(
        self, connection: Connection, spec: ContactSpec, table: Table, rows: Sequence[Row], derived: Derived
    ) -> int:
        def finish(base: Any) -> Any:
            merged: dict[str, SqlValue] = {}
            for name in spec.times:
                merged[name] = _earliest(table.c[name], base.excluded[name])
            for name in spec.descriptive:
                merged[name] = func.coalesce(table.c[name], base.excluded[name])
            changed = or_(*(merged[name].is_distinct_from(table.c[name]) for name in merged))
            return base.on_conflict_do_update(
                index_elements=[spec.key], set_={**merged, **derived(connection, merged)}, where=changed
            )

        return self._bulk.run(connection, f"merge:{table.name}", table, finish, rows)


def _progress(warned: SqlValue, breached: SqlValue) -> SqlValue:
    """`kpi_state.target_progress` in SQL."""
    two: SqlValue = literal_column("2")  # no bound parameters: see bulk.py
    one: SqlValue = literal_column("1")
    zero: SqlValue = literal_column("0")
    return case((breached, two), else_=zero) + case((warned, one), else_=zero)


def _earliest(stored: SqlValue, incoming: SqlValue) -> SqlValue:
    return case((stored.is_(None), incoming), (incoming.is_(None), stored), (incoming < stored, incoming), else_=stored)


def seconds_sql(connection: Connection, start: SqlValue, end: SqlValue) -> SqlValue:
    """`end - start` in seconds, exact to the microsecond, NULL when either is NULL.

    SQLite keeps timestamps as `YYYY-MM-DD HH:MM:SS.ffffff` UTC text: whole seconds come from
    `strftime('%s')`, microseconds from characters 21-26. PostgreSQL subtracts timestamptz.
    """
    if connection.dialect.name == "sqlite":

        def whole(value: SqlValue) -> SqlValue:
            return cast(func.strftime(literal_column("'%s'"), value), Integer)

        def micros(value: SqlValue) -> SqlValue:
            return cast(func.substr(value, literal_column("21"), literal_column("6")), Integer)

        million: SqlValue = literal_column("1000000")
        total = (whole(end) - whole(start)) * million + (micros(end) - micros(start))
        diff: SqlValue = total / literal_column("1000000.0")
    else:
        diff = cast(extract("epoch", end - start), Float)
    return case((and_(start.is_not(None), end.is_not(None)), diff), else_=None)


Derived = Callable[[Connection, dict[str, SqlValue]], dict[str, SqlValue]]


def _call_derived(connection: Connection, merged: dict[str, SqlValue]) -> dict[str, SqlValue]:
    answered_or_abandoned = func.coalesce(merged["answered_at"], merged["abandoned_at"])
    talk = seconds_sql(connection, merged["answered_at"], merged["ended_at"])
    return {
        "wait_seconds": seconds_sql(connection, merged["offered_at"], answered_or_abandoned),
        "handle_seconds": talk + func.coalesce(merged["wrap_up_seconds"], literal_column("0.0")),
    }


def _visit_derived(connection: Connection, merged: dict[str, SqlValue]) -> dict[str, SqlValue]:
    return {"wait_seconds": seconds_sql(connection, merged["checked_in_at"], merged["called_at"])}

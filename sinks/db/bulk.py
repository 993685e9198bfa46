"""Running one `INSERT ... ON CONFLICT` over a whole batch of rows, fast, on SQLite and PostgreSQL.

SQLAlchemy compiles each statement once per dialect; the rows then go to the driver directly,
skipping SQLAlchemy's per-row parameter processing (the costliest part of a large batch):

* SQLite: one `executemany` of the statement (the prepared statement is reused per row);
  timestamps become the UTC text SQLAlchemy's SQLite `DateTime` stores.
* PostgreSQL: the rows are streamed with `COPY` into a temporary staging table, then one
  `INSERT ... SELECT ... ON CONFLICT` moves them, all inside the caller's transaction.
  psycopg errors are raised as SQLAlchemy's (`OperationalError`, `IntegrityError`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, column, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from sinks.db.models import UtcDateTime
from sinks.db.records import Row

Finish = Callable[[Any], Any]
"""Turns the dialect's bare `insert(...)` into the full statement (`on_conflict_...`)."""


class UnsupportedDialect(RuntimeError):
    """Bulk upserts exist for SQLite and PostgreSQL only."""


def sqlite_timestamp(value: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS.ffffff` in UTC, as SQLAlchemy's SQLite `DateTime` stores it."""
    offset = value.utcoffset()
    if offset:
        value = value - offset
    return value.isoformat(" ", "microseconds")[:26]


@dataclass(frozen=True)
class _SqlitePlan:
    sql: str
    names: tuple[str, ...]
    timestamps: tuple[int, ...]
    """Positions of timestamp parameters."""

    def parameters(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        names, timestamps = self.names, self.timestamps
        seen: dict[int, tuple[datetime, str]] = {}  # a batch shares one `stored_at`: convert it once
        out: list[tuple[Any, ...]] = []
        for row in rows:
            values = [row[name] for name in names]
            for position in timestamps:
                value = values[position]
                if value is None:
                    continue
                last = seen.get(position)
                if last is not None and last[0] is value:
                    values[position] = last[1]
                else:
                    text = sqlite_timestamp(value)
                    seen[position] = (value, text)
                    values[position] = text
            out.append(tuple(values))
        return out


@dataclass(frozen=True)
class _PostgresPlan:
    create: str
    copy: str
    insert: str
    clear: str
    names: tuple[str, ...]


class BulkRunner:
    """Compiles each statement once per dialect and runs it over many rows (not thread-safe)."""

    def __init__(self) -> None:
        self._plans: dict[tuple[str, str], _SqlitePlan | _PostgresPlan] = {}

    def run(self, connection: Connection, key: str, target: Table, finish: Finish, rows: Sequence[Row]) -> int:
        """Run the statement `key` (built by `finish`) over `rows`; returns rows inserted or changed."""
        if not rows:
            return 0
        name = connection.dialect.name
        plan = self._plans.get((name, key))
        if plan is None:
            plan = self._plan(connection, target, finish)
            self._plans[(name, key)] = plan
        if isinstance(plan, _SqlitePlan):
            result = connection.exec_driver_sql(plan.sql, plan.parameters(rows))
            return max(int(result.rowcount), 0)
        return self._copy_and_insert(connection, plan, rows)

    def _plan(self, connection: Connection, target: Table, finish: Finish) -> _SqlitePlan | _PostgresPlan:
        dialect = connection.dialect
        if dialect.name == "sqlite":
            compiled = finish(sqlite.insert(target)).compile(dialect=dialect)
            names = tuple(compiled.positiontup or ())
            stamps = tuple(i for i, n in enumerate(names) if isinstance(target.c[n].type, UtcDateTime))
            return _SqlitePlan(compiled.string, names, stamps)
        if dialect.name != "postgresql":
            raise UnsupportedDialect(f"no bulk upsert for dialect {dialect.name!r}")
        names = tuple(c.name for c in target.columns)
        stage = table(f"tawasul_stage_{target.name}", *(column(n) for n in names))
        statement = finish(postgresql.insert(target).from_select(list(names), select(*stage.c)))
        quote = dialect.identifier_preparer.quote
        stage_name, columns = quote(stage.name), ", ".join(quote(n) for n in names)
        return _PostgresPlan(
            create=(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage_name} "
                f"(LIKE {dialect.identifier_preparer.format_table(target)}) ON COMMIT DELETE ROWS"
            ),
            copy=f"COPY {stage_name} ({columns}) FROM STDIN",
            insert=statement.compile(dialect=dialect).string,
            clear=f"DELETE FROM {stage_name}",
            names=names,
        )

    @staticmethod
    def _copy_and_insert(connection: Connection, plan: _PostgresPlan, rows: Sequence[Row]) -> int:
        import psycopg

        raw: Any = connection.connection.driver_connection
        names = plan.names
        statement = plan.create
        try:
            with raw.cursor() as cursor:
                cursor.execute(statement)
                statement = plan.copy
                with cursor.copy(plan.copy) as copy:
                    for row in rows:
                        copy.write_row([row[name] for name in names])
                statement = plan.insert
                cursor.execute(plan.insert)
                count = cursor.rowcount
                statement = plan.clear
                cursor.execute(plan.clear)
        except psycopg.Error as exc:
            invalidated = connection.dialect.is_disconnect(exc, raw, None)  # type: ignore[arg-type]  # a psycopg error and its raw connection, as SQLAlchemy passes them
            if invalidated:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                statement, None, exc, psycopg.Error, connection_invalidated=invalidated, dialect=connection.dialect
            ) from exc
        return max(int(count), 0)

"""Running one `INSERT ... ON CONFLICT` over a whole batch of rows, fast, on SQLite and PostgreSQL.

SQLAlchemy compiles each statement once per dialect; the rows then go to the driver directly,
skipping SQLAlchemy's per-row parameter processing (the costliest part of a large batch):

* SQLite: one `executemany` of the statement (the prepared statement is reused per row);
  timestamps become the UTC text SQLAlchemy's SQLite `DateTime` stores.
* PostgreSQL: the rows are streamed with binary `COPY` into a temporary staging table, then
  one `INSERT ... SELECT ... ON CONFLICT` moves them, all inside the caller's transaction.
  psycopg errors are raised as SQLAlchemy's (`OperationalError`, `IntegrityError`, ...); a
  value the binary format cannot carry as its column's type (or an `integer` out of range,
  which it would wrap around) as `DataError`, as the server would refuse it in text.

Measured (bench/README.md, "bench_sink.py"): per row, binary `COPY` costs the sink about half
the CPU of text `COPY` (2.3 against 4.8 us); `INSERT ... SELECT FROM unnest(arrays)` about 45
us (psycopg builds the arrays in Python) and `executemany` in pipeline mode about 16 us, with
more work for the server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, column, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.types import BigInteger, Boolean, Float, Integer, String, TypeEngine

from sinks.db.models import UtcDateTime
from sinks.db.records import Row

Finish = Callable[[Any], Any]
"""Turns the dialect's bare `insert(...)` into the full statement (`on_conflict_...`)."""


class UnsupportedDialect(RuntimeError):
    """Bulk upserts exist for SQLite and PostgreSQL only."""


def sqlite_timestamp(value: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS.ffffff` in UTC, as SQLAlchemy's SQLite `DateTime` stores it."""
    if value.tzinfo is not UTC:
        offset = value.utcoffset()
        if offset:
            value = value - offset
    return value.isoformat(" ", "microseconds")[:26]


INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
TIMESTAMP_MEMO = 200_000
"""Timestamp texts remembered across a `BulkRunner`'s statements (a batch's event times come
again in its calls, visits and outcomes); forgotten all at once beyond this many."""


@dataclass(frozen=True)
class _SqlitePlan:
    sql: str
    names: tuple[str, ...]
    timestamps: tuple[int, ...]
    """Positions of timestamp parameters."""

    def parameters(self, rows: Sequence[Row], texts: dict[datetime, str]) -> list[tuple[Any, ...]]:
        """The rows as parameter tuples, timestamps as SQLite text through the memo `texts` (a
        batch's event times come again in its calls and visits, and its rows share one `stored_at`)."""
        values_of = itemgetter(*self.names)
        if len(self.names) == 1:
            return [(values_of(row),) for row in rows]
        timestamps = self.timestamps
        if not timestamps:
            return [values_of(row) for row in rows]
        out: list[tuple[Any, ...]] = []
        append, remembered = out.append, texts.get
        for row in rows:
            values = list(values_of(row))
            for position in timestamps:
                value = values[position]
                if value is not None:
                    text = remembered(value)
                    if text is None:
                        text = texts[value] = sqlite_timestamp(value)
                    values[position] = text
            append(tuple(values))
        return out


@dataclass(frozen=True)
class _PostgresPlan:
    create: str
    copy: str
    insert: str
    clear: str
    names: tuple[str, ...]
    types: tuple[str, ...] | None
    """PostgreSQL type names of the columns for a binary `COPY`; None: text `COPY`."""
    int4: tuple[int, ...] = ()
    """Positions of `integer` columns: binary `COPY` would wrap a larger value around, so they are checked."""


_BINARY_TYPES: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (UtcDateTime, "timestamptz"),
    (BigInteger, "int8"),
    (Integer, "int4"),
    (Float, "float8"),
    (Boolean, "bool"),
    (String, "text"),  # Text too; VARCHAR(n) columns take text values (the server checks the length)
)


def _binary_type(column_type: TypeEngine[Any]) -> str | None:
    for kind, name in _BINARY_TYPES:
        if isinstance(column_type, kind):
            return "varchar" if name == "text" and getattr(column_type, "length", None) else name
    return None


def _binary_types(target: Table) -> tuple[str, ...] | None:
    """The columns' binary `COPY` types, or None when one has a type not mapped here."""
    types = tuple(_binary_type(c.type) for c in target.columns)
    return None if None in types else types  # type: ignore[return-value]


class BulkRunner:
    """Compiles each statement once per dialect and runs it over many rows (not thread-safe)."""

    def __init__(self) -> None:
        self._plans: dict[tuple[str, str], _SqlitePlan | _PostgresPlan] = {}
        self._texts: dict[datetime, str] = {}

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
            if len(self._texts) > TIMESTAMP_MEMO:
                self._texts.clear()
            result = connection.exec_driver_sql(plan.sql, plan.parameters(rows, self._texts))
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
        types = _binary_types(target)
        return _PostgresPlan(
            create=(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage_name} "
                f"(LIKE {dialect.identifier_preparer.format_table(target)}) ON COMMIT DELETE ROWS"
            ),
            copy=f"COPY {stage_name} ({columns}) FROM STDIN" + (" (FORMAT BINARY)" if types else ""),
            insert=statement.compile(dialect=dialect).string,
            clear=f"DELETE FROM {stage_name}",
            names=names,
            types=types,
            int4=tuple(i for i, name in enumerate(types or ()) if name == "int4"),
        )

    @staticmethod
    def _copy_and_insert(connection: Connection, plan: _PostgresPlan, rows: Sequence[Row]) -> int:
        import psycopg

        raw: Any = connection.connection.driver_connection
        values_of, int4 = itemgetter(*plan.names), plan.int4
        statement = plan.create
        try:
            with raw.cursor() as cursor:
                cursor.execute(statement)
                statement = plan.copy
                with cursor.copy(plan.copy) as copy:
                    if plan.types is not None:
                        copy.set_types(plan.types)
                    for row in rows:
                        values = values_of(row)
                        for position in int4:
                            value = values[position]
                            if value is not None and not INT4_MIN <= value <= INT4_MAX:
                                raise OverflowError(f"{plan.names[position]} out of range for integer")
                        copy.write_row(values)
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
        except (TypeError, ValueError, OverflowError) as exc:  # a value the binary COPY cannot send as its type
            raise DataError(statement, None, exc) from exc
        return max(int(count), 0)

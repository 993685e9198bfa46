"""Database engines: SQLite (WAL, busy timeout, foreign keys) and PostgreSQL via psycopg 3."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite writer waits for a lock held by another process."""

_POSTGRES_ALIASES = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg3"}


class UnsupportedDatabase(ValueError):
    """The URL names a database other than SQLite or PostgreSQL."""


def normalize_url(url: str | URL) -> URL:
    """`postgresql://` and `postgres://` become `postgresql+psycopg://`; SQLite stays as it is."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in _POSTGRES_ALIASES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() in {"sqlite", "postgresql"}:
        return parsed
    raise UnsupportedDatabase(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA cache_size = -65536")
    finally:
        cursor.close()


def make_engine(url: str | URL, **options: Any) -> Engine:
    """An engine for `url` with Tawasul's settings; extra `options` go to `create_engine`."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, **options.pop("connect_args", {})}
        engine = create_engine(parsed, connect_args=connect_args, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_pre_ping", True)
    connect_args = {"connect_timeout": 5, **options.pop("connect_args", {})}
    return create_engine(parsed, connect_args=connect_args, **options)


def is_unavailable(error: BaseException) -> bool:
    """True when `error` means the database cannot be reached now (worth retrying later).

    Connection failures, dropped connections, SQLite's "database is locked" and server
    shutdowns are all `OperationalError`/`InterfaceError` or invalidate the connection.
    """
    if isinstance(error, OperationalError | InterfaceError | DisconnectionError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def describe_url(url: str | URL) -> str:
    """The URL without its password, safe to log."""
    return normalize_url(url).render_as_string(hide_password=True)


def describe_error(error: BaseException) -> str:
    """The first line of a database error's own message (without SQLAlchemy's background
    link), prefixed with its type; for one-line command errors."""
    cause = getattr(error, "orig", None) or error
    first = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__

"""Database engines: SQLite (WAL, busy timeout, foreign keys) and PostgreSQL via psycopg 3
(statement timeout, TCP keepalives and a TCP user timeout, so a server that vanishes without
closing its connections is noticed in seconds)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite writer waits for a lock held by another process (default)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a database client waits before it gives a connection up; from `TAWASUL_DB_*`."""

    statement_timeout_s: float = 120.0
    """PostgreSQL `statement_timeout`: a statement running (or waiting for a lock) longer fails; 0 = none."""
    connect_timeout_s: int = 5
    keepalives_idle_s: int = 10
    """Seconds of silence on a connection before the first TCP keepalive probe."""
    keepalives_interval_s: int = 5
    keepalives_count: int = 3
    """Unanswered probes after which the connection is dead (idle 10 + 3 x 5 = 25 s by default)."""
    tcp_user_timeout_s: float = 30.0
    """Sent data left unacknowledged this long kills the connection (keepalives only cover idle ones)."""
    sqlite_busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionLimits:
        """Defaults overridden by `TAWASUL_DB_STATEMENT_TIMEOUT_S`, `TAWASUL_DB_CONNECT_TIMEOUT_S`,
        `TAWASUL_DB_KEEPALIVES_IDLE_S`, `TAWASUL_DB_KEEPALIVES_INTERVAL_S`, `TAWASUL_DB_KEEPALIVES_COUNT`,
        `TAWASUL_DB_TCP_USER_TIMEOUT_S` and `TAWASUL_DB_BUSY_TIMEOUT_S`."""
        env = os.environ if environ is None else environ
        names = {
            "statement_timeout_s": ("TAWASUL_DB_STATEMENT_TIMEOUT_S", float),
            "connect_timeout_s": ("TAWASUL_DB_CONNECT_TIMEOUT_S", int),
            "keepalives_idle_s": ("TAWASUL_DB_KEEPALIVES_IDLE_S", int),
            "keepalives_interval_s": ("TAWASUL_DB_KEEPALIVES_INTERVAL_S", int),
            "keepalives_count": ("TAWASUL_DB_KEEPALIVES_COUNT", int),
            "tcp_user_timeout_s": ("TAWASUL_DB_TCP_USER_TIMEOUT_S", float),
            "sqlite_busy_timeout_s": ("TAWASUL_DB_BUSY_TIMEOUT_S", float),
        }
        values: dict[str, Any] = {}
        for field, (name, kind) in names.items():
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number of seconds (or a count), not {raw!r}") from None
            if value < 0:
                raise ValueError(f"{name} must not be negative, not {raw!r}")
            values[field] = value
        return cls(**values)


def postgres_connect_args(url: URL, limits: ConnectionLimits) -> dict[str, Any]:
    """psycopg connect arguments: timeouts and keepalives, and the URL's own `options` with
    `-c statement_timeout=...` added (unless the URL sets a statement timeout itself)."""
    options = str(url.query.get("options") or "")
    if limits.statement_timeout_s and "statement_timeout" not in options:
        setting = f"-c statement_timeout={round(limits.statement_timeout_s * 1000)}"
        options = f"{options} {setting}".strip()
    args: dict[str, Any] = {
        "connect_timeout": limits.connect_timeout_s,
        "keepalives": 1,
        "keepalives_idle": limits.keepalives_idle_s,
        "keepalives_interval": limits.keepalives_interval_s,
        "keepalives_count": limits.keepalives_count,
        "tcp_user_timeout": round(limits.tcp_user_timeout_s * 1000),
    }
    if options:
        args["options"] = options
    return args


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


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        _apply_sqlite_pragmas(dbapi_connection, busy_timeout_ms)

    return set_pragmas


def _apply_sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA cache_size = -65536")
    finally:
        cursor.close()


def make_engine(url: str | URL, limits: ConnectionLimits | None = None, **options: Any) -> Engine:
    """An engine for `url` with Tawasul's settings and `limits` (default: from the environment);
    extra `options` go to `create_engine`."""
    parsed = normalize_url(url)
    limits = ConnectionLimits.from_env() if limits is None else limits
    if parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": limits.sqlite_busy_timeout_s, **options.pop("connect_args", {})}
        engine = create_engine(parsed, connect_args=connect_args, **options)
        event.listen(engine, "connect", _sqlite_pragmas(round(limits.sqlite_busy_timeout_s * 1000)))
        return engine
    options.setdefault("pool_pre_ping", True)
    connect_args = {**postgres_connect_args(parsed, limits), **options.pop("connect_args", {})}
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

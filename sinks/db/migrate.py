"""Schema migrations (Alembic, run programmatically: no alembic.ini needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL

from sinks.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class MigrationError(RuntimeError):
    """The database schema cannot be brought to the version this code needs."""


class DatabaseTooNew(MigrationError):
    """The database was migrated by a newer Tawasul than this one."""

    def __init__(self, current: str, head: str) -> None:
        super().__init__(f"database is at revision {current}, this Tawasul knows up to {head}: upgrade Tawasul")
        self.current = current
        self.head = head


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands: its revision (None when never migrated) and this code's head."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic `Config` pointing at `sinks/migrations` (and at `url` when given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError("no migration scripts found")
    return head


def known_revisions() -> frozenset[str]:
    """Every revision this code has a migration script for."""
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_known(current: str | None, script: ScriptDirectory, head: str) -> None:
    if current is None:
        return
    if current not in {rev.revision for rev in script.walk_revisions()}:
        raise DatabaseTooNew(current, head)


def _with_engine(target: str | URL | Engine) -> tuple[Engine, bool]:
    if isinstance(target, Engine):
        return target, False
    return make_engine(target), True


def status(target: str | URL | Engine) -> SchemaStatus:
    """The database's current revision and this code's head (nothing is changed)."""
    engine, owned = _with_engine(target)
    try:
        with engine.connect() as connection:
            current = _current(connection)
    finally:
        if owned:
            engine.dispose()
    return SchemaStatus(current=current, head=head_revision())


def upgrade(target: str | URL | Engine, revision: str = "head") -> SchemaStatus:
    """Migrate the database to `revision` (default: the newest); a no-op when already there.

    Raises `DatabaseTooNew` when the database carries a revision this code does not know.
    """
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    head = head_revision()
    engine, owned = _with_engine(target)
    try:
        with engine.connect() as connection:
            _check_known(_current(connection), script, head)
        migrating = _all_or_nothing(engine)
        try:
            with migrating.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        finally:
            if migrating is not engine:
                migrating.dispose()
        with engine.connect() as connection:
            current = _current(connection)
    finally:
        if owned:
            engine.dispose()
    return SchemaStatus(current=current, head=head)


def _all_or_nothing(engine: Engine) -> Engine:
    """An engine whose transactions take DDL in too, for migrating a SQLite file.

    Python's sqlite3 driver opens a transaction only before INSERT/UPDATE/DELETE, so each CREATE
    TABLE of a migration commits on its own: a process killed mid-migration (a sink stopped in
    its first seconds) left half a schema that no later start could migrate. Here the driver's
    own transaction handling is off and every transaction starts with `BEGIN IMMEDIATE`, which
    also makes a second migrating process wait instead of interleaving. PostgreSQL's DDL is
    transactional already; an in-memory SQLite database is private to its engine and kept as is.
    """
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:") or database.startswith("file::memory:"):
        return engine
    migrating = make_engine(engine.url)

    @event.listens_for(migrating, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(migrating, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return migrating


def stamp(target: str | URL | Engine, revision: str) -> None:
    """Record `revision` as the database's version without running migrations (for tests and repairs)."""
    config = alembic_config()
    engine, owned = _with_engine(target)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.stamp(config, revision, purge=True)
    finally:
        if owned:
            engine.dispose()

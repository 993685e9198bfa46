"""Schema migrations (Alembic, run programmatically: no alembic.ini needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
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
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        with engine.connect() as connection:
            current = _current(connection)
    finally:
        if owned:
            engine.dispose()
    return SchemaStatus(current=current, head=head)


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

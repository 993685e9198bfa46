"""Alembic migrations on SQLite and PostgreSQL: from empty to head, equal to the models, too new."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, text

from sinks.db import migrate
from sinks.db.engine import make_engine
from sinks.db.models import metadata
from sinks.db_cmd import db

NEWER_REVISION = "9999_from_the_future"


def test_upgrade_from_empty_matches_the_models(database_url: str) -> None:
    assert migrate.status(database_url).current is None
    state = migrate.upgrade(database_url)
    assert state.current == state.head == migrate.head_revision()
    assert state.up_to_date
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert set(metadata.tables) <= tables
        assert {
            "events",
            "tickets",
            "ticket_targets",
            "calls",
            "visits",
            "surveys",
            "sla_outcomes",
            "kpi_snapshots",
        } <= tables
    finally:
        engine.dispose()
    assert migrate.upgrade(database_url).current == state.head  # a second run is a no-op


def test_cli_upgrade_and_current(database_url: str) -> None:
    runner = CliRunner()
    before = runner.invoke(db, ["current", "--db", database_url])
    assert before.exit_code == 0 and "not migrated yet" in before.output
    upgraded = runner.invoke(db, ["upgrade", "--db", database_url])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded from empty to {migrate.head_revision()}" in upgraded.output
    after = runner.invoke(db, ["current", "--db", database_url])
    assert after.exit_code == 0 and "up to date" in after.output


def test_a_newer_database_is_refused(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :newer"), {"newer": NEWER_REVISION})
    engine.dispose()
    with pytest.raises(migrate.DatabaseTooNew) as raised:
        migrate.upgrade(database_url)
    head = migrate.head_revision()
    assert str(raised.value) == (
        f"database is at revision {NEWER_REVISION}, this Tawasul knows up to {head}: upgrade Tawasul"
    )
    assert migrate.status(database_url).current == NEWER_REVISION  # left untouched
    runner = CliRunner()
    upgraded = runner.invoke(db, ["upgrade", "--db", database_url])
    assert upgraded.exit_code == 1 and "upgrade Tawasul" in upgraded.output
    current = runner.invoke(db, ["current", "--db", database_url])
    assert current.exit_code == 1 and "newer than this Tawasul" in current.output


def test_a_migration_stopped_half_way_leaves_nothing_and_the_next_start_migrates(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sink killed in its first seconds stops its migration half way: on SQLite each CREATE TABLE
    used to commit on its own, leaving half a schema no later start could migrate."""
    from alembic.operations import Operations

    create_table = Operations.create_table
    created: list[str] = []

    def stopped_after_three(self: Operations, name: str, *columns: object, **kw: object) -> object:
        if len(created) == 3:
            raise KeyboardInterrupt("the process stops here")
        created.append(name)
        return create_table(self, name, *columns, **kw)

    monkeypatch.setattr(Operations, "create_table", stopped_after_three)
    with pytest.raises(KeyboardInterrupt):
        migrate.upgrade(database_url)
    assert len(created) == 3
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            left = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert left.isdisjoint(created), f"half a schema left: {sorted(left)}"
    monkeypatch.undo()
    state = migrate.upgrade(database_url)
    assert state.up_to_date and migrate.status(database_url).current == migrate.head_revision()

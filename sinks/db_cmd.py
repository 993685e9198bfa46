"""`tawasul db upgrade` / `tawasul db current`: the database schema and its migrations."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from sinks.db import migrate
from sinks.db.engine import describe_url
from tawasul.infra.cli_options import settings_options
from tawasul.infra.settings import Settings


@click.group("db")
def db() -> None:
    """The database schema (Alembic migrations)."""


@db.command("upgrade")
@settings_options
def upgrade(settings: Settings) -> None:
    """Migrate the database to this Tawasul's schema (a no-op when it is already there)."""
    try:
        before = migrate.status(settings.database_url).current
        after = migrate.upgrade(settings.database_url)
    except migrate.MigrationError as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(f"cannot reach {describe_url(settings.database_url)}: {type(exc).__name__}") from exc
    if before == after.current:
        click.echo(f"{describe_url(settings.database_url)}: already at revision {after.current} (newest)")
    else:
        click.echo(f"{describe_url(settings.database_url)}: upgraded from {before or 'empty'} to {after.current}")


@db.command("current")
@settings_options
def current(settings: Settings) -> None:
    """Show the database's schema revision and the newest this Tawasul knows."""
    try:
        state = migrate.status(settings.database_url)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"cannot reach {describe_url(settings.database_url)}: {type(exc).__name__}") from exc
    if state.up_to_date:
        note = "up to date"
    elif state.current is None:
        note = "not migrated yet: run `tawasul db upgrade`"
    elif state.current not in migrate.known_revisions():
        note = "newer than this Tawasul: upgrade Tawasul"
    else:
        note = "behind: run `tawasul db upgrade`"
    click.echo(f"database revision: {state.current or 'none'}")
    click.echo(f"newest known:      {state.head}")
    click.echo(f"status:            {note}")
    if state.current is not None and state.current not in migrate.known_revisions():
        raise SystemExit(1)

"""`tawasul wallboard`: serve the operations wall display."""

from __future__ import annotations

import logging

import click
from sqlalchemy.exc import ArgumentError

from sinks.db.engine import UnsupportedDatabase, describe_url, normalize_url
from sinks.wallboard.app import create_app
from sinks.wallboard.config import WallboardConfig
from tawasul.infra.cli_options import run_web_app, settings_options
from tawasul.infra.settings import Settings

log = logging.getLogger(__name__)


@click.command("wallboard")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="TAWASUL_WALLBOARD_HOST",
    help="Address to listen on [env TAWASUL_WALLBOARD_HOST]",
)
@click.option(
    "--port",
    default=8088,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="TAWASUL_WALLBOARD_PORT",
    help="Port to listen on [env TAWASUL_WALLBOARD_PORT]",
)
@click.option(
    "--window",
    default="today",
    show_default=True,
    help="KPI window shown for service level, ASA, abandon ratio and satisfaction",
)
@click.option(
    "--refresh",
    "refresh_seconds",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.5, 300),
    help="Seconds between recomputed boards without new data (waits and 'late by' move with the clock); "
    "new data is pushed at once",
)
@click.option(
    "--stale-after",
    "stale_after_seconds",
    default=300.0,
    show_default=True,
    type=click.FloatRange(1, 86_400),
    help="Warn on the page when the newest data is older than this",
)
@click.option(
    "--token",
    envvar="TAWASUL_WALLBOARD_TOKEN",
    default=None,
    show_default=False,
    help="Bearer token for the page, its API and its event stream [env TAWASUL_WALLBOARD_TOKEN]",
)
@settings_options
def wallboard(
    settings: Settings,
    host: str,
    port: int,
    window: str,
    refresh_seconds: float,
    stale_after_seconds: float,
    token: str | None,
) -> None:
    """Serve the operations wall display (a web page for a big screen) from the database."""
    try:
        normalize_url(settings.database_url)
    except (UnsupportedDatabase, ArgumentError) as exc:
        raise click.ClickException(str(exc)) from exc
    config = WallboardConfig(
        database_url=settings.database_url,
        window=window,
        refresh_seconds=refresh_seconds,
        stale_after_seconds=stale_after_seconds,
        token=token or None,
    )
    if not token and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "wallboard listens beyond loopback without a token (set TAWASUL_WALLBOARD_TOKEN)", extra={"host": host}
        )
    log.info("wallboard starting", extra={"host": host, "port": port, "database": describe_url(settings.database_url)})
    # said once the server listens (aiohttp calls `print` then), not before it tries
    run_web_app(
        create_app(config),
        host=host,
        port=port,
        access_log=None,
        print=lambda _started: click.echo(f"Wall display on http://{host}:{port}/ (Ctrl+C to stop)", err=True),
    )

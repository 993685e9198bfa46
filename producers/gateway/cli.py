"""`tawasul gateway`: serve the HTTP ingest endpoint until SIGTERM / Ctrl-C."""

from __future__ import annotations

import logging

import click
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from producers.gateway.app import GatewayOptions, create_app, run_kwargs
from producers.gateway.config import ENV_SECRETS, AdapterRegistry, GatewayConfigError, load_secrets
from sinks.db import migrate
from sinks.db.engine import UnsupportedDatabase, describe_error, describe_url
from tawasul.infra.cli_options import run_web_app, settings_options
from tawasul.infra.metrics import Metrics
from tawasul.infra.pseudonymise import ENV_PSEUDONYM_KEY, PseudonymiseError, from_env
from tawasul.infra.settings import Settings

logger = logging.getLogger("tawasul.gateway")


def check_permissions(adapters: AdapterRegistry, *, required: bool) -> None:
    """Warn about (or, when `required`, refuse) adapters whose permissions the secrets file does not state."""
    implicit = [adapter.name for adapter in adapters if adapter.permissions.implicit]
    if implicit and required:
        raise click.ClickException(
            f"adapters without event_types or `allow: all`: {', '.join(implicit)} (--require-permissions)"
        )
    for name in implicit:
        logger.warning(
            "adapter may send every event type and channel: give it event_types/channels, or `allow: all`",
            extra={"adapter": name},
        )


def prepare_database(settings: Settings) -> None:
    """Bring the database's schema to this code's head (the replay-protection table lives there)."""
    try:
        migrate.upgrade(settings.database_url)
    except (UnsupportedDatabase, ArgumentError, migrate.MigrationError, SQLAlchemyError) as exc:
        detail = describe_error(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
        raise click.ClickException(f"cannot use the database for replay protection: {detail}") from None


@click.command("gateway")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback by default; 0.0.0.0 for every interface)",
)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on")
@click.option(
    "--secrets",
    "secrets",
    envvar=ENV_SECRETS,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help=f"YAML file of channel adapters, their credentials, permissions and rate limits [env {ENV_SECRETS}]",
)
@click.option(
    "--max-body-bytes",
    default=1_048_576,
    show_default=True,
    type=click.IntRange(1),
    help="Largest accepted request body (413 above)",
)
@click.option(
    "--require-permissions",
    is_flag=True,
    help="Refuse to start when an adapter has neither event_types nor `allow: all`",
)
@settings_options
def gateway(
    host: str,
    port: int,
    secrets: str,
    max_body_bytes: int,
    require_permissions: bool,
    settings: Settings,
) -> None:
    """Serve POST /v1/events (CloudEvents, single or batch), GET /healthz and GET /metrics."""
    try:
        adapters = load_secrets(secrets)
        pseudonymiser = from_env(required=False)
    except (GatewayConfigError, PseudonymiseError) as exc:
        raise click.ClickException(str(exc)) from None
    check_permissions(adapters, required=require_permissions)
    prepare_database(settings)
    if pseudonymiser is None:
        logger.warning(
            "no pseudonymisation key: events carrying raw phone numbers will be rejected",
            extra={"variable": ENV_PSEUDONYM_KEY},
        )
    app = create_app(
        settings,
        adapters,
        options=GatewayOptions(max_body_bytes=max_body_bytes),
        metrics=Metrics(role="gateway"),
        pseudonymiser=pseudonymiser,
    )
    for adapter in adapters:
        logger.info(
            "adapter",
            extra={
                "adapter": adapter.name,
                "permissions": adapter.permissions.describe(),
                "rate_per_second": adapter.rate_limit.per_second,
                "burst": adapter.rate_limit.burst,
            },
        )
    logger.info(
        "gateway listening",
        extra={
            "host": host,
            "port": port,
            "adapters": len(adapters),
            "kafka": settings.kafka,
            "database": describe_url(settings.database_url),
            "max_body_bytes": max_body_bytes,
        },
    )
    run_web_app(app, host=host, port=port, **run_kwargs())

"""`tawasul gateway`: serve the HTTP ingest endpoint until SIGTERM / Ctrl-C."""

from __future__ import annotations

import logging

import click

from producers.gateway.app import GatewayOptions, create_app, run_kwargs
from producers.gateway.config import ENV_SECRETS, GatewayConfigError, load_secrets
from producers.pseudonymise import ENV_PSEUDONYM_KEY, PseudonymiseError, from_env
from tawasul.cli_options import run_web_app, settings_options
from tawasul.metrics import Metrics
from tawasul.settings import Settings

logger = logging.getLogger("tawasul.gateway")


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on")
@click.option("--secrets", "secrets", envvar=ENV_SECRETS, required=True,
              type=click.Path(exists=True, dir_okay=False),
              help=f"YAML file of channel adapters and their credentials [env {ENV_SECRETS}]")
@click.option("--max-body-bytes", default=1_048_576, show_default=True, type=click.IntRange(1),
              help="Largest accepted request body (413 above)")
@settings_options
def gateway(host: str, port: int, secrets: str, max_body_bytes: int, settings: Settings) -> None:
    """Serve POST /v1/events (CloudEvents, single or batch), GET /healthz and GET /metrics."""
    try:
        adapters = load_secrets(secrets)
        pseudonymiser = from_env(required=False)
    except (GatewayConfigError, PseudonymiseError) as exc:
        raise click.ClickException(str(exc)) from None
    if pseudonymiser is None:
        logger.warning(
            "no pseudonymisation key: events carrying raw phone numbers will be rejected",
            extra={"variable": ENV_PSEUDONYM_KEY},
        )
    app = create_app(
        settings, adapters, options=GatewayOptions(max_body_bytes=max_body_bytes),
        metrics=Metrics(role="gateway"), pseudonymiser=pseudonymiser,
    )
    logger.info(
        "gateway listening",
        extra={"host": host, "port": port, "adapters": len(adapters), "kafka": settings.kafka,
               "max_body_bytes": max_body_bytes},
    )
    run_web_app(app, host=host, port=port, **run_kwargs())

"""`tawasul topics`: create and list the project's Kafka topics."""

from __future__ import annotations

import click

from tawasul.infra.cli_options import settings_options
from tawasul.infra.settings import Settings
from tawasul.infra.topics import ALL_TOPICS, ensure_topics


@click.group()
def topics() -> None:
    """The project's Kafka topics."""


@topics.command("create")
@click.option("--prefix", default=None, envvar="TAWASUL_TOPIC_PREFIX", help="Run-specific topic name prefix")
@settings_options
def create(prefix: str | None, settings: Settings) -> None:
    """Create every topic that is missing (idempotent)."""
    created = ensure_topics(settings.kafka, prefix or "")
    for name in created:
        click.echo(f"created {name}")
    click.echo(f"{len(ALL_TOPICS)} topics present, {len(created)} created")


@topics.command("list")
def list_topics() -> None:
    """Show the declared topics."""
    for spec in ALL_TOPICS:
        cleanup = spec.config.get("cleanup.policy", "delete")
        click.echo(f"{spec.name:24} partitions={spec.partitions:<2} {cleanup:8} {spec.description}")

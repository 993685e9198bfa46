"""The `tawasul` command line: a map from command names to the modules that implement them."""

from __future__ import annotations

import importlib
import os

import click

from tawasul.infra.demo_secrets import PlaceholderSecret, refuse_placeholder_secrets
from tawasul.infra.exit_codes import EXIT_KAFKA, EXIT_USAGE
from tawasul.infra.logs import configure_logging

COMMANDS: dict[str, str] = {
    "kafka": "tawasul.infra.kafka_local.cli:kafka",
    "topics": "tawasul.app.topics_cli:topics",
    "simulate": "producers.simulate_cmd:simulate",
    "report": "sinks.report_cmd:report",
    "ticket": "sinks.ticket_cmd:ticket",
    "gateway": "producers.gateway.cli:gateway",
    "replay": "tawasul.app.replay_cmd:replay",
    "wallboard": "sinks.wallboard.cli:wallboard",
    "sink": "sinks.sink_cmd:sink",
    "db": "sinks.db_cmd:db",
    "publish": "producers.publish_cmd:publish",
    "adapters": "producers.adapters_cmd:adapters",
    "demo": "tawasul.app.demo_cmd:demo",
    "worker": "stream_processors.worker_cmd:worker",
}
"""Command name -> `module:click-object`. Modules are imported only when their command runs."""


class LazyGroup(click.Group):
    """A click group that imports a command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--kafka", "kafka", default=None, help="Kafka bootstrap servers [env TAWASUL_KAFKA; localhost:9092]")
@click.option(
    "--db",
    "database_url",
    default=None,
    help="SQLAlchemy database URL [env TAWASUL_DATABASE_URL; sqlite:///tawasul.db]",
)
@click.option(
    "--policies",
    "policies",
    default=None,
    type=click.Path(dir_okay=False),
    help="SLA policy file [env TAWASUL_POLICIES; the shipped default]",
)
@click.option(
    "--log-level",
    default="info",
    envvar="TAWASUL_LOG_LEVEL",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level (JSON logs on stderr)",
)
@click.version_option(package_name="tawasul")
def cli(kafka: str | None, database_url: str | None, policies: str | None, log_level: str) -> None:
    """Tawasul: live SLA, satisfaction and contact-centre KPIs for government customer service."""
    configure_logging(log_level)
    try:
        refuse_placeholder_secrets(os.environ)
    except PlaceholderSecret as exc:
        raise click.UsageError(str(exc)) from None


def main() -> None:
    from tawasul.infra.topics import KafkaSettingError, KafkaUnavailableError

    try:
        cli(prog_name="tawasul")
    except KafkaUnavailableError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_KAFKA) from None
    except KafkaSettingError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None

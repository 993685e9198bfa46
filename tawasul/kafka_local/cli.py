"""`tawasul kafka start|stop|status`."""

from __future__ import annotations

from pathlib import Path

import click

from tawasul.kafka_local.broker import CONTROLLER_PORT, BrokerLayout, default_home, log_tail, start, status, stop
from tawasul.kafka_local.errors import BrokerError


def _layout(home: str | None, port: int, controller_port: int) -> BrokerLayout:
    return BrokerLayout(home=Path(home) if home else default_home(), port=port, controller_port=controller_port)


_home = click.option("--home", default=None, envvar="TAWASUL_HOME",
                     help="Folder for the Kafka jars, data and logs [env TAWASUL_HOME; ~/.cache/tawasul]")
_port = click.option("--port", default=9092, show_default=True, help="Client listener port")
_controller = click.option("--controller-port", default=CONTROLLER_PORT, show_default=True,
                           help="KRaft controller port (not 9093: Alertmanager's)")


@click.group()
def kafka() -> None:
    """A local single-node Apache Kafka broker (KRaft) for development, demos and tests."""


@kafka.command("start")
@_home
@_port
@_controller
@click.option("--heap", default="1g", show_default=True, help="Broker JVM heap")
@click.option("--timeout", "timeout_s", default=120.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds to wait for the broker to answer before stopping it and failing")
def start_command(home: str | None, port: int, controller_port: int, heap: str, timeout_s: float) -> None:
    """Start the broker (fetching Apache Kafka the first time); returns once it accepts requests."""
    layout = _layout(home, port, controller_port)
    try:
        started = start(layout, heap=heap, timeout_s=timeout_s, echo=lambda line: click.echo(line, err=True))
    except BrokerError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Kafka {'started' if started else 'already running'} on {layout.bootstrap}")


@kafka.command("stop")
@_home
@_port
@_controller
def stop_command(home: str | None, port: int, controller_port: int) -> None:
    """Stop the broker cleanly."""
    layout = _layout(home, port, controller_port)
    click.echo("Kafka stopped" if stop(layout) else "Kafka was not running")


@kafka.command("status")
@_home
@_port
@_controller
@click.option("--logs", is_flag=True, help="Also show the last lines of the broker log")
def status_command(home: str | None, port: int, controller_port: int, logs: bool) -> None:
    """Say whether the broker runs; exit status 0 when it answers, 3 when stopped."""
    layout = _layout(home, port, controller_port)
    state = status(layout)
    click.echo(f"Kafka {state}")
    if logs:
        click.echo(log_tail(layout))
    if not state.startswith("running"):
        raise SystemExit(3)

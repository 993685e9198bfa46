"""`tawasul kafka start|stop|status`: a local KRaft cluster of one or more nodes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tawasul.infra.kafka_local import cluster as local
from tawasul.infra.kafka_local.broker import CONTROLLER_PORT, default_home, log_tail, status
from tawasul.infra.kafka_local.errors import BrokerError


def _cluster(home: str | None, **requested: object) -> local.Cluster:
    try:
        return local.resolve(Path(home) if home else default_home(), **requested)
    except BrokerError as error:
        raise click.ClickException(str(error)) from error


_home = click.option(
    "--home",
    default=None,
    envvar="TAWASUL_HOME",
    help="Folder for the Kafka jars, data and logs [env TAWASUL_HOME; ~/.cache/tawasul]",
)
_port = click.option(
    "--port", type=int, default=None, help=f"Client port of node 1 [the saved cluster's; {local.DEFAULT_PORT}]"
)
_controller = click.option(
    "--controller-port",
    type=int,
    default=None,
    help=f"KRaft controller port of node 1 (not 9093: Alertmanager's) [{CONTROLLER_PORT}]",
)


@click.group()
def kafka() -> None:
    """A local Apache Kafka cluster (KRaft) for development, demos and tests.

    Node k listens on port + (k-1) * port-step (9092, 9192, 9292 ...) and its controller on
    controller-port + (k-1) * port-step (19093, 19193 ...). The shape is kept in the home folder:
    `start` run again without flags restarts only the nodes that are down."""


@kafka.command("start")
@_home
@_port
@_controller
@click.option(
    "--brokers",
    type=click.IntRange(1, local.MAX_BROKERS),
    default=None,
    help="Number of nodes [the saved cluster's; 1]",
)
@click.option(
    "--port-step",
    type=click.IntRange(min=1),
    default=None,
    help=f"Port distance between nodes [{local.DEFAULT_PORT_STEP}]",
)
@click.option(
    "--secure/--plaintext",
    default=None,
    help="SASL_SSL with SCRAM-SHA-512 only; prints the client settings as `export` lines for eval",
)
@click.option("--heap", default=None, help="JVM heap per node [1g for one node, 512m each for more]")
@click.option(
    "--timeout",
    "timeout_s",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds to wait for the nodes to answer before stopping them and failing",
)
def start_command(
    home: str | None,
    port: int | None,
    controller_port: int | None,
    brokers: int | None,
    port_step: int | None,
    secure: bool | None,
    heap: str | None,
    timeout_s: float,
) -> None:
    """Start the cluster (fetching Apache Kafka the first time); returns once every node answers."""
    cluster = _cluster(
        home, port=port, controller_port=controller_port, brokers=brokers, port_step=port_step, secure=secure
    )
    try:
        started = local.start(cluster, heap=heap, timeout_s=timeout_s, echo=lambda line: click.echo(line, err=True))
    except BrokerError as error:
        raise click.ClickException(str(error)) from error
    what = f"Kafka {'started' if started else 'already running'} on {cluster.plan.bootstrap}"
    if cluster.plan.secure:
        click.echo(what + " (SASL_SSL, SCRAM-SHA-512)", err=True)
        for line in cluster.exports():
            click.echo(line)
    else:
        click.echo(what)


@kafka.command("stop")
@_home
@_port
@_controller
def stop_command(home: str | None, port: int | None, controller_port: int | None) -> None:
    """Stop every node of the cluster cleanly."""
    stopped = local.stop(_cluster(home, port=port, controller_port=controller_port))
    click.echo("Kafka stopped" if stopped else "Kafka was not running")


@kafka.command("status")
@_home
@_port
@_controller
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"bootstrap": ..., "nodes": [{"id", "port", "pid", "running"}]}'
)
@click.option("--logs", is_flag=True, help="Also show the last lines of each node's log")
def status_command(home: str | None, port: int | None, controller_port: int | None, as_json: bool, logs: bool) -> None:
    """Say whether the nodes run; exit status 0 when every node answers, 3 otherwise."""
    cluster = _cluster(home, port=port, controller_port=controller_port)
    if as_json:
        found = local.status(cluster)
        click.echo(json.dumps(found))
        if not all(node["running"] for node in found["nodes"]):
            raise SystemExit(3)
        return
    layouts = cluster.layouts()
    states = [status(layout) for layout in layouts]
    for layout, state in zip(layouts, states, strict=True):
        click.echo(f"Kafka {state}" if len(layouts) == 1 else f"node {layout.node_id}: {state}")
        if logs:
            click.echo(log_tail(layout))
    if not all(state.startswith("running") for state in states):
        raise SystemExit(3)

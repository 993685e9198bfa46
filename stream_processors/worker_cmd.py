"""`tawasul worker`: the live stream processors on the wall clock (contract section 1)."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from functools import partial
from pathlib import Path

import click
import faust

from stream_processors.app import build_app, default_app_id
from stream_processors.kpi_agent import register_kpis
from stream_processors.lag_metrics import watch_progress
from stream_processors.table_store import discard_stale_partitions
from tawasul.infra.cli_options import policy_book, settings_options
from tawasul.infra.metrics import Metrics
from tawasul.infra.metrics_server import DEFAULT_METRICS_HOST, MetricsServerError, start_metrics_server
from tawasul.infra.policy_books import publish_policy_book
from tawasul.infra.settings import Settings
from tawasul.infra.topics import EVENTS, ensure_topics, partition_end_offsets

DEFAULT_METRICS_PORT = 9465
ENV_METRICS_PORT = "TAWASUL_WORKER_METRICS_PORT"
ENV_METRICS_HOST = "TAWASUL_WORKER_METRICS_HOST"
ENV_APP_ID = "TAWASUL_WORKER_APP_ID"
ENV_INSTANCE_ID = "TAWASUL_WORKER_INSTANCE_ID"
ENV_SESSION_TIMEOUT = "TAWASUL_WORKER_SESSION_TIMEOUT"
ENV_STATE_DIR = "TAWASUL_STATE_DIR"
ENV_PROCESSORS = "TAWASUL_WORKER_PROCESSORS"
PROCESSORS = ("all", "sla", "kpis")


def default_state_dir() -> Path:
    return Path(tempfile.gettempdir()) / "tawasul-faust"


log = logging.getLogger(__name__)


@click.command("worker")
@settings_options
@click.option(
    "--metrics-port",
    type=int,
    default=DEFAULT_METRICS_PORT,
    envvar=ENV_METRICS_PORT,
    show_default=True,
    help=f"Port of the worker's Prometheus /metrics endpoint, 0 for none [env {ENV_METRICS_PORT}]",
)
@click.option(
    "--metrics-host",
    default=DEFAULT_METRICS_HOST,
    envvar=ENV_METRICS_HOST,
    show_default=True,
    help=f"Address the /metrics endpoint listens on (0.0.0.0 in a container) [env {ENV_METRICS_HOST}]",
)
@click.option(
    "--app-id",
    default=None,
    envvar=ENV_APP_ID,
    help="Faust app id = consumer group and changelog prefix [default: <topic prefix>"
    f"tawasul-stream-processors; env {ENV_APP_ID}]",
)
@click.option(
    "--instance-id",
    default=None,
    envvar=ENV_INSTANCE_ID,
    help="Static group membership id, unique per worker: a worker restarted with the same id gets its "
    f"partitions back without waiting for the session timeout [default: <app id>@<host name>; env "
    f"{ENV_INSTANCE_ID}; '-' turns it off]",
)
@click.option(
    "--session-timeout",
    type=click.FloatRange(min=6.0, max=1800.0),
    default=30.0,
    envvar=ENV_SESSION_TIMEOUT,
    show_default=True,
    help="Seconds without a heartbeat after which the group gives a worker's partitions to the others; "
    "a worker with static membership that stopped or died keeps its partitions this long (it sends no "
    f"leave request) [env {ENV_SESSION_TIMEOUT}]",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar=ENV_STATE_DIR,
    help="Directory of the worker's local table state (RocksDB, one folder per app id); a worker "
    "restarted with it resumes from it instead of reading the whole changelog "
    f"[default: <temp dir>/tawasul-faust; env {ENV_STATE_DIR}]",
)
@click.option(
    "--processors",
    type=click.Choice(PROCESSORS),
    default="all",
    envvar=ENV_PROCESSORS,
    show_default=True,
    help="Which stream processors this worker runs: both, the SLA engine only, or the KPI processor "
    "only; run one `sla` and one `kpis` worker to give each its own process (their default app "
    f"ids end in -sla and -kpis) [env {ENV_PROCESSORS}]",
)
def worker(
    settings: Settings,
    metrics_port: int,
    metrics_host: str,
    app_id: str | None,
    instance_id: str | None,
    session_timeout: float,
    state_dir: Path | None,
    processors: str,
) -> None:
    """The live stream processors: SLA deadlines on the wall clock, KPIs. Stops cleanly on SIGTERM/SIGINT.

    Topics carry the prefix of TAWASUL_TOPIC_PREFIX (empty by default).
    """
    policy_book(settings)  # a policy file that cannot be used is named before anything starts
    metrics = Metrics(role="worker")
    if metrics_port:
        try:
            start_metrics_server(metrics.registry, port=metrics_port, host=metrics_host)
        except MetricsServerError as exc:
            raise click.ClickException(f"{exc}; choose another --metrics-port") from exc
    ensure_topics(settings.kafka, settings.topic_prefix)
    publish_policy_book(settings, "worker")  # the sink stores the book; outcomes carry its hash
    app_id = app_id or default_app_id(settings, "live") + ("" if processors == "all" else f"-{processors}")
    if instance_id is None:
        instance_id = f"{app_id}@{socket.gethostname()}"
    datadir = (state_dir or default_state_dir()) / app_id
    app = build_app(
        settings,
        mode="live",
        app_id=app_id,
        metrics=metrics,
        with_sla=processors != "kpis",
        extra_registrars=() if processors == "sla" else (register_kpis,),
        instance_id=None if instance_id == "-" else instance_id,
        session_timeout_s=session_timeout,
        datadir=datadir,
    )
    watch_progress(app, metrics, settings.topic(EVENTS.name))
    for stale in discard_stale_partitions(
        Path(app.conf.tabledir), app.conf.id, partial(partition_end_offsets, settings.kafka)
    ):
        log.warning(
            "local table state is beyond the end of its changelog (the broker's data was wiped, or the "
            "topic created again): discarded; the partition is restored from the changelog",
            extra={
                "table": stale.table,
                "partition": stale.partition,
                "persisted_offset": stale.persisted_offset,
                "changelog_end": stale.changelog_end,
            },
        )
    log.info(
        "worker starting",
        extra={
            "app_id": app.conf.id,
            "processors": processors,
            "metrics_port": metrics_port,
            "pid": os.getpid(),
            "state_dir": str(datadir),
        },
    )
    # faust.Worker installs SIGINT/SIGTERM handlers that stop every service cleanly (offsets
    # committed, producer flushed) and exits with status 0.
    faust.Worker(app, quiet=True, override_logging=False, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    from tawasul.infra.logs import configure_logging

    configure_logging(os.environ.get("TAWASUL_LOG_LEVEL", "info"))
    worker()

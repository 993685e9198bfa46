"""`tawasul worker`: the live stream processors on the wall clock (contract section 1)."""

from __future__ import annotations

import logging
import os
import socket

import click
import faust
from prometheus_client import start_http_server

from tawasul.cli_options import settings_options
from tawasul.metrics import Metrics
from tawasul.settings import Settings
from tawasul.topics import ensure_topics

from stream_processors.kpi_agent import register_kpis
from stream_processors.app import build_app, default_app_id

DEFAULT_METRICS_PORT = 9465
ENV_METRICS_PORT = "TAWASUL_WORKER_METRICS_PORT"
ENV_APP_ID = "TAWASUL_WORKER_APP_ID"
ENV_INSTANCE_ID = "TAWASUL_WORKER_INSTANCE_ID"

log = logging.getLogger(__name__)


@click.command("worker")
@settings_options
@click.option("--metrics-port", type=int, default=DEFAULT_METRICS_PORT, envvar=ENV_METRICS_PORT, show_default=True,
              help=f"Port of the worker's Prometheus /metrics endpoint, 0 for none [env {ENV_METRICS_PORT}]")
@click.option("--app-id", default=None, envvar=ENV_APP_ID,
              help="Faust app id = consumer group and changelog prefix [default: <topic prefix>"
                   f"tawasul-stream-processors; env {ENV_APP_ID}]")
@click.option("--instance-id", default=None, envvar=ENV_INSTANCE_ID,
              help="Static group membership id, unique per worker: a worker restarted with the same id gets its "
                   f"partitions back without waiting for the session timeout [default: <app id>@<host name>; env "
                   f"{ENV_INSTANCE_ID}; '-' turns it off]")
def worker(settings: Settings, metrics_port: int, app_id: str | None, instance_id: str | None) -> None:
    """The live stream processors: SLA deadlines on the wall clock. Stops cleanly on SIGTERM/SIGINT.

    Topics carry the prefix of TAWASUL_TOPIC_PREFIX (empty by default).
    """
    ensure_topics(settings.kafka, settings.topic_prefix)
    metrics = Metrics()
    if metrics_port:
        start_http_server(metrics_port, registry=metrics.registry)
    app_id = app_id or default_app_id(settings, "live")
    if instance_id is None:
        instance_id = f"{app_id}@{socket.gethostname()}"
    app = build_app(settings, mode="live", app_id=app_id, metrics=metrics, extra_registrars=(register_kpis,),
                    instance_id=None if instance_id == "-" else instance_id)
    log.info("worker starting", extra={"app_id": app.conf.id, "metrics_port": metrics_port, "pid": os.getpid()})
    # faust.Worker installs SIGINT/SIGTERM handlers that stop every service cleanly (offsets
    # committed, producer flushed) and exits with status 0.
    faust.Worker(app, quiet=True, override_logging=False, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    from tawasul.logs import configure_logging

    configure_logging(os.environ.get("TAWASUL_LOG_LEVEL", "info"))
    worker()

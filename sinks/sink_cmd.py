"""`tawasul sink`: the live database sink (Kafka -> SQL) until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from sinks.consumer import run_db_sink, tune_gc
from sinks.db.migrate import DatabaseTooNew
from sinks.metrics_feed import MetricsFeed
from tawasul.infra.cli_options import settings_options
from tawasul.infra.metrics import Metrics
from tawasul.infra.metrics_server import MetricsServerError, metrics_options, start_metrics_server
from tawasul.infra.settings import Settings


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """Set `stop` on SIGINT or SIGTERM while the block runs (main thread only)."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@click.command("sink")
@settings_options
@click.option(
    "--group-id", default=None, help="Kafka consumer group of the sink [default: tawasul-sink, after the topic prefix]"
)
@click.option(
    "--batch-max",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Most records stored in one transaction",
)
@click.option(
    "--batch-wait",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.01, 60.0),
    help="Longest wait (seconds) to fill a batch",
)
@metrics_options
def sink(
    settings: Settings, group_id: str | None, batch_max: int, batch_wait: float, metrics_host: str, metrics_port: int
) -> None:
    """Store events, SLA outcomes, ticket states and KPI snapshots in the database, and serve
    the Prometheus metrics (open tickets, SLA outcomes, satisfaction, call KPIs, pipeline health).

    Migrates the database first; commits Kafka offsets only after the rows are stored.
    """
    tune_gc()
    metrics = Metrics(role="sink")
    feed = MetricsFeed(metrics)
    try:
        server = start_metrics_server(metrics.registry, port=metrics_port, host=metrics_host)
    except MetricsServerError as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()
    with stop_on_signals(stop):
        try:
            summary = run_db_sink(
                settings,
                stop=stop,
                metrics=metrics,
                group_id=group_id or settings.topic("tawasul-sink"),
                batch_max=batch_max,
                batch_wait_s=batch_wait,
                on_record=feed.observe_record,
                on_start=feed.seed_open_tickets,
            )
        except DatabaseTooNew as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            server.close()
    total = sum(summary.records.values())
    click.echo(f"sink stopped: {total} records handled, {summary.skipped} skipped", err=True)

"""`tawasul demo`: everything on embedded defaults with simulated, realistic traffic."""

from __future__ import annotations

import click

from tawasul.app.demo import DemoError, DemoOptions, run_demo
from tawasul.infra.cli_options import settings_options
from tawasul.infra.settings import Settings


@click.command("demo")
@click.option(
    "--history-days",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 31),
    help="Days of simulated history published first (deadlines in the past fire at once)",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01, 3600),
    help="Live traffic pace: 1 = real time, 60 = a simulated minute per second",
)
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.001, 100),
    help="Traffic volume multiplier (1 = the department's half-year report)",
)
@click.option("--seed", default=7, show_default=True, help="Simulator seed")
@click.option("--duration", "duration_s", default=None, type=float, help="Stop after this many seconds")
@click.option("--wallboard-port", default=8088, show_default=True)
@click.option("--metrics-port", default=9464, show_default=True, help="Sink /metrics port")
@click.option("--worker-metrics-port", default=9465, show_default=True, help="Worker /metrics port")
@click.option("--traffic-only", is_flag=True, help="Only publish the traffic (the other services run elsewhere)")
@settings_options
def demo(
    history_days: float,
    speed: float,
    scale: float,
    seed: int,
    duration_s: float | None,
    wallboard_port: int,
    metrics_port: int,
    worker_metrics_port: int,
    traffic_only: bool,
    settings: Settings,
) -> None:
    """Start Kafka (if none runs), the stream processors, the sink, the wall display, and publish
    simulated contact-centre traffic until Ctrl-C."""
    options = DemoOptions(
        history_days=history_days,
        speed=speed,
        scale=scale,
        seed=seed,
        duration_s=duration_s,
        wallboard_port=wallboard_port,
        metrics_port=metrics_port,
        worker_metrics_port=worker_metrics_port,
        traffic_only=traffic_only,
    )
    try:
        published = run_demo(settings, options, say=lambda line: click.echo(line, err=True))
    except DemoError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"demo stopped: {published} events published", err=True)

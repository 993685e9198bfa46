"""The Prometheus endpoint: a populated registry served over HTTP, valid for `promtool check metrics`."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import urllib.request

import click
import pytest
from aiohttp import ClientSession, web
from click.testing import CliRunner
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from schemas import new_event
from sinks.db.engine import make_engine
from sinks.db.migrate import upgrade
from sinks.db.writer import DbWriter
from sinks.metrics_feed import MetricsFeed
from sinks.metrics_server import (
    DEFAULT_METRICS_PORT,
    MetricsServerError,
    metrics_handler,
    metrics_options,
    start_metrics_server,
)
from tawasul.metrics import Metrics

AS_OF = "2025-03-04T10:15:00+04:00"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install the Debian packages prometheus and prometheus-alertmanager")
    return path


def populated() -> Metrics:
    """A registry with a sample in every metric family, fed the way the sink feeds it."""
    metrics = Metrics()
    feed = MetricsFeed(metrics)
    feed.observe_ticket_state({
        "ticket_id": "T-1", "channel": "complaints_platform", "kind": "facility_report", "priority": "urgent",
        "status": "open", "policy": "mosque-urgent", "version": 3,
        "targets": {"resolution": {"deadline": AS_OF, "state": "breached", "warned": True, "breached": True}},
    })
    feed.observe_outcome(new_event(
        "sla.breached", "T-1", AS_OF,
        {"ticket_id": "T-1", "target": "resolution", "policy": "mosque-urgent", "deadline": AS_OF,
         "channel": "complaints_platform", "kind": "facility_report", "category": "mosque.air_conditioning",
         "priority": "urgent"}, "/stream-processors/sla", id="T-1:resolution:sla.breached:0"))
    for figure, scope, value in (
        ("surveys.satisfaction", {"channel": "call"}, 0.985), ("calls.service_level", {"queue": "general"}, 0.82),
        ("calls.average_speed_of_answer_seconds", {"queue": "general"}, 14.5),
        ("calls.abandon_ratio", {"queue": "general"}, 0.04), ("calls.waiting", {"queue": "general"}, 3),
        ("visits.waiting", {"centre": "main_building"}, 6),
    ):
        feed.observe_kpi(new_event("kpi.snapshot", figure, AS_OF, {
            "figure": figure, "window": "today", "scope": scope, "value": value, "count": 200, "as_of": AS_OF,
        }, "/stream-processors/kpi"))
    metrics.events_accepted.labels(channel="crm", type="ticket.opened").inc(5)
    metrics.events_rejected.labels(source_kind="http", reason="data.priority").inc()
    metrics.dead_letters.labels(source_kind="http").inc()
    metrics.duplicates.labels(stage="sla").inc()
    metrics.gateway_requests.labels(status="202").inc()
    metrics.ignored_after_close.inc()
    metrics.sla_ticks_ignored.labels(reason="live").inc()
    metrics.sla_outcomes_emitted.labels(outcome="breached", channel="complaints_platform", kind="facility_report",
                                        target="resolution").inc()
    metrics.consumer_lag.labels(stage="sink", topic="tawasul.sla.outcomes").set(12)
    metrics.processing_delay.labels(stage="sla").observe(0.03)
    metrics.deadline_delay.observe(0.4)
    metrics.sink_batch_seconds.observe(0.02)
    metrics.sink_rows.labels(table="events").inc(100)
    metrics.db_errors.labels(kind="unavailable").inc()
    metrics.db_up.set(1)
    return metrics


def test_exposition_passes_promtool_check_metrics() -> None:
    body = generate_latest(populated().registry)
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_every_declared_family_has_a_sample_in_the_populated_registry() -> None:
    declared = {family.name for family in Metrics().registry.collect()}
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(populated().registry).decode())}
    assert declared <= set(families)
    assert [name for name in sorted(declared) if not families[name].samples] == []


def test_metrics_server_serves_the_registry() -> None:
    metrics = populated()
    with start_metrics_server(metrics.registry, port=0, host="127.0.0.1") as server:
        assert server.port > 0
        with urllib.request.urlopen(server.url, timeout=10) as response:
            content_type = response.headers["Content-Type"]
            body = response.read().decode()
    assert content_type.startswith("text/plain")
    assert ('tawasul_tickets_open{channel="complaints_platform",kind="facility_report",'
            'priority="urgent",sla_state="breached"} 1.0') in body
    assert ('tawasul_sla_outcomes_total{channel="complaints_platform",kind="facility_report",'
            'outcome="breached",target="resolution"} 1.0') in body
    assert 'tawasul_satisfaction_ratio{channel="call",window="today"} 0.985' in body
    assert "tawasul_database_up 1.0" in body


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsServerError, match=f"127.0.0.1:{port}"):
            start_metrics_server(Metrics().registry, port=port, host="127.0.0.1")


def test_aiohttp_handler_serves_the_registry() -> None:
    metrics = populated()

    async def scrape() -> tuple[int, str, str]:
        app = web.Application()
        app.router.add_get("/metrics", metrics_handler(metrics.registry))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
                return response.status, response.headers["Content-Type"], await response.text()
        finally:
            await runner.cleanup()

    status, content_type, body = asyncio.run(scrape())
    assert status == 200 and content_type.startswith("text/plain")
    assert 'tawasul_calls_waiting{queue="general"} 3.0' in body


def test_metrics_options_default_flag_and_environment() -> None:
    @click.command()
    @metrics_options
    def show(metrics_host: str, metrics_port: int) -> None:
        click.echo(f"{metrics_host} {metrics_port}")

    runner = CliRunner()
    assert runner.invoke(show, []).output.split() == ["127.0.0.1", str(DEFAULT_METRICS_PORT)]
    assert runner.invoke(show, [], env={"TAWASUL_METRICS_PORT": "9500"}).output.split()[1] == "9500"
    assert runner.invoke(show, ["--metrics-port", "9600", "--metrics-host", "127.0.0.1"],
                         env={"TAWASUL_METRICS_PORT": "9500"}).output.split() == ["127.0.0.1", "9600"]
    assert runner.invoke(show, ["--metrics-port", "70000"]).exit_code == 2


def test_feed_is_seeded_with_the_open_tickets_of_the_database(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    writer = DbWriter(engine)
    base = {"category": "mosque.cleaning", "department": None, "policy": "crm-standard",
            "opened_at": AS_OF, "resolved_at": None, "closed_at": None, "updated_at": AS_OF, "version": 2}
    target = {"deadline": AS_OF, "state": "running", "warned": False, "breached": False}
    for ticket_id, status, channel, resolution in (
        ("T-1", "open", "crm", target | {"state": "breached", "breached": True}),
        ("T-2", "open", "crm", target | {"warned": True}),
        ("T-3", "open", "web", target),
        ("T-4", "closed", "crm", target | {"state": "met"}),
    ):
        writer.add(base | {"ticket_id": ticket_id, "status": status, "channel": channel, "kind": "request",
                           "priority": "normal", "targets": {"resolution": resolution}})
    writer.flush()
    metrics = Metrics()
    feed = MetricsFeed(metrics)
    assert feed.seed_open_tickets(engine) == 3
    engine.dispose()
    assert feed.open_tickets() == {("crm", "request", "normal", "breached"): 1,
                                   ("crm", "request", "normal", "at_risk"): 1,
                                   ("web", "request", "normal", "on_track"): 1}
    # a later message for a seeded ticket moves it rather than counting it twice
    feed.observe_ticket_state(base | {"ticket_id": "T-2", "status": "resolved", "channel": "crm", "kind": "request",
                                      "priority": "normal", "version": 3, "targets": {}})
    assert metrics.registry.get_sample_value("tawasul_tickets_open", {
        "channel": "crm", "kind": "request", "priority": "normal", "sla_state": "at_risk"}) == 0

"""The Prometheus endpoint: a populated registry served over HTTP, valid for `promtool check metrics`."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from typing import Any

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
from tawasul.infra.metrics import DECLARED, GATEWAY_REFUSAL_REASONS, ROLE_NAMES, ROLES, Metrics
from tawasul.infra.metrics_server import (
    DEFAULT_METRICS_PORT,
    MetricsServerError,
    metrics_handler,
    metrics_options,
    metrics_token,
    start_metrics_server,
)

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
    feed.observe_ticket_state(
        {
            "ticket_id": "T-1",
            "channel": "complaints_platform",
            "kind": "facility_report",
            "priority": "urgent",
            "status": "open",
            "policy": "mosque-urgent",
            "version": 3,
            "targets": {"resolution": {"deadline": AS_OF, "state": "breached", "warned": True, "breached": True}},
        }
    )
    feed.observe_outcome(
        new_event(
            "sla.breached",
            "T-1",
            AS_OF,
            {
                "ticket_id": "T-1",
                "target": "resolution",
                "policy": "mosque-urgent",
                "deadline": AS_OF,
                "channel": "complaints_platform",
                "kind": "facility_report",
                "category": "mosque.air_conditioning",
                "priority": "urgent",
            },
            "/stream-processors/sla",
            id="T-1:resolution:sla.breached:0",
        )
    )
    for figure, scope, value in (
        ("surveys.satisfaction", {"channel": "call"}, 0.985),
        ("calls.service_level", {"queue": "general"}, 0.82),
        ("calls.average_speed_of_answer_seconds", {"queue": "general"}, 14.5),
        ("calls.abandon_ratio", {"queue": "general"}, 0.04),
        ("calls.waiting", {"queue": "general"}, 3),
        ("visits.waiting", {"centre": "main_building"}, 6),
    ):
        feed.observe_kpi(
            new_event(
                "kpi.snapshot",
                figure,
                AS_OF,
                {
                    "figure": figure,
                    "window": "today",
                    "scope": scope,
                    "value": value,
                    "count": 200,
                    "as_of": AS_OF,
                },
                "/stream-processors/kpi",
            )
        )
    metrics.events_accepted.labels(channel="crm", type="ticket.opened").inc(5)
    metrics.events_rejected.labels(source_kind="http", reason="data.priority").inc()
    metrics.dead_letters.labels(source_kind="http").inc()
    metrics.duplicates.labels(stage="sla").inc()
    metrics.conflicting_duplicates.labels(stage="sink").inc()
    metrics.gateway_requests.labels(status="202").inc()
    metrics.gateway_auth_refusals.labels(reason="replayed").inc()
    metrics.gateway_rate_limited.labels(adapter="pbx-main").inc()
    metrics.gateway_forbidden_events.labels(adapter="pbx-main").inc()
    metrics.ignored_after_close.inc()
    metrics.closed_tickets_expired.inc()
    metrics.sla_ticks_ignored.labels(reason="live").inc()
    metrics.sla_outcomes_emitted.labels(
        outcome="breached", channel="complaints_platform", kind="facility_report", target="resolution"
    ).inc()
    metrics.consumer_lag.labels(stage="sink", topic="tawasul.sla.outcomes").set(12)
    metrics.processing_delay.labels(stage="sla").observe(0.03)
    metrics.deadline_delay.observe(0.4)
    metrics.sink_batch_seconds.observe(0.02)
    metrics.sink_rows.labels(table="events").inc(100)
    metrics.db_errors.labels(kind="unavailable").inc()
    metrics.db_up.set(1)
    metrics.gateway_refusals.labels(reason="unauthorized").inc()
    metrics.worker_lag.labels(stage="sla", partition="0").set(3)
    metrics.worker_event_age.labels(stage="kpis", partition="0").set_function(lambda: 1.5)
    metrics.worker_held_writes.set(2)
    metrics.wallboard_reads.labels(result="ok").inc()
    return metrics


def families(metrics: Metrics) -> set[str]:
    """The metric families of a scrape (the `_created` companions of counters and histograms aside)."""
    exposition = generate_latest(metrics.registry).decode()
    return {f.name for f in text_string_to_metric_families(exposition) if not f.name.endswith("_created")}


def test_exposition_passes_promtool_check_metrics() -> None:
    body = generate_latest(populated().registry)
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_every_declared_family_has_a_sample_in_the_populated_registry() -> None:
    declared = {family.name for family in Metrics().declare_all().registry.collect()}
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(populated().registry).decode())}
    assert declared <= set(families)
    assert [name for name in sorted(declared) if not families[name].samples] == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_each_role_registers_only_the_metrics_it_maintains(role: str) -> None:
    metrics = Metrics(role=role)  # type: ignore[arg-type]
    expected = {getattr(metrics, name)._name for name in ROLES[role]}
    assert families(metrics) == expected
    body = generate_latest(metrics.registry)
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_counters_that_alerts_read_with_increase_start_at_zero() -> None:
    from producers.gateway.app import REFUSAL_REASONS

    gateway = Metrics(role="gateway")
    assert gateway.registry.get_sample_value("tawasul_dead_letters_total", {"source_kind": "http"}) == 0
    assert set(REFUSAL_REASONS.values()) | {"other"} == set(GATEWAY_REFUSAL_REASONS)
    for reason in GATEWAY_REFUSAL_REASONS:
        assert gateway.registry.get_sample_value("tawasul_gateway_refusals_total", {"reason": reason}) == 0
    sink = Metrics(role="sink")
    assert sink.registry.get_sample_value("tawasul_database_errors_total", {"kind": "unavailable"}) == 0
    assert sink.registry.get_sample_value("tawasul_dead_letters_total", {"source_kind": "sink"}) == 0


def test_only_the_sink_exports_the_database_gauge() -> None:
    owners = {role for role in ROLE_NAMES if "tawasul_database_up" in families(Metrics(role=role))}  # type: ignore[arg-type]
    assert owners == {"sink"}


def test_a_metric_outside_the_role_is_registered_on_first_use_only() -> None:
    metrics = Metrics(role="worker")
    assert "tawasul_consumer_lag_messages" not in families(metrics)
    metrics.consumer_lag.labels(stage="sink", topic="t").set(1)
    assert "tawasul_consumer_lag_messages" in families(metrics)
    assert metrics.consumer_lag is metrics.consumer_lag
    with pytest.raises(AttributeError, match="no metric 'not_declared'"):
        _ = metrics.not_declared
    with pytest.raises(ValueError, match="unknown metrics role 'cook'"):
        Metrics(role="cook")  # type: ignore[arg-type]


def test_every_declared_metric_belongs_to_a_role() -> None:
    assert set(DECLARED) == {name for names in ROLES.values() for name in names}


def test_a_metrics_token_is_required_once_set() -> None:
    with start_metrics_server(populated().registry, port=0, host="127.0.0.1", token="s3cret") as server:
        for header in (None, "Bearer wrong", "Basic s3cret"):
            request = urllib.request.Request(server.url, headers={"Authorization": header} if header else {})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 401
        request = urllib.request.Request(server.url, headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert "tawasul_database_up 1.0" in response.read().decode()
        with urllib.request.urlopen(server.url.replace("/metrics", "/healthz"), timeout=10) as response:
            assert response.status == 200  # health needs no token


def test_the_token_comes_from_the_environment() -> None:
    assert metrics_token({"TAWASUL_METRICS_TOKEN": " abc "}) == "abc"
    assert metrics_token({"TAWASUL_METRICS_TOKEN": ""}) is None
    assert metrics_token({}) is None


async def scrape_handler(handler: Any, header: str | None = None) -> tuple[int, str, str]:
    """Serve `handler` on /metrics of a real aiohttp server and GET it once."""
    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        headers = {"Authorization": header} if header else {}
        async with (
            ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response,
        ):
            return response.status, response.headers["Content-Type"], await response.text()
    finally:
        await runner.cleanup()


def test_aiohttp_handler_requires_the_token() -> None:
    handler = metrics_handler(populated().registry, token="s3cret")
    assert asyncio.run(scrape_handler(handler))[0] == 401
    assert asyncio.run(scrape_handler(handler, "Bearer wrong"))[0] == 401
    assert asyncio.run(scrape_handler(handler, "Bearer s3cret"))[0] == 200


def test_metrics_server_serves_the_registry() -> None:
    metrics = populated()
    with start_metrics_server(metrics.registry, port=0, host="127.0.0.1") as server:
        assert server.port > 0
        with urllib.request.urlopen(server.url, timeout=10) as response:
            content_type = response.headers["Content-Type"]
            body = response.read().decode()
    assert content_type.startswith("text/plain")
    assert (
        'tawasul_tickets_open{channel="complaints_platform",kind="facility_report",'
        'priority="urgent",sla_state="breached"} 1.0'
    ) in body
    assert (
        'tawasul_sla_outcomes_total{channel="complaints_platform",kind="facility_report",'
        'outcome="breached",target="resolution"} 1.0'
    ) in body
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
    status, content_type, body = asyncio.run(scrape_handler(metrics_handler(populated().registry)))
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
    assert runner.invoke(
        show, ["--metrics-port", "9600", "--metrics-host", "127.0.0.1"], env={"TAWASUL_METRICS_PORT": "9500"}
    ).output.split() == ["127.0.0.1", "9600"]
    assert runner.invoke(show, ["--metrics-port", "70000"]).exit_code == 2


def test_feed_is_seeded_with_the_open_tickets_of_the_database(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    writer = DbWriter(engine)
    base = {
        "category": "mosque.cleaning",
        "department": None,
        "policy": "crm-standard",
        "opened_at": AS_OF,
        "resolved_at": None,
        "closed_at": None,
        "updated_at": AS_OF,
        "version": 2,
    }
    target = {"deadline": AS_OF, "state": "running", "warned": False, "breached": False}
    for ticket_id, status, channel, resolution in (
        ("T-1", "open", "crm", target | {"state": "breached", "breached": True}),
        ("T-2", "open", "crm", target | {"warned": True}),
        ("T-3", "open", "web", target),
        ("T-4", "closed", "crm", target | {"state": "met"}),
    ):
        writer.add(
            base
            | {
                "ticket_id": ticket_id,
                "status": status,
                "channel": channel,
                "kind": "request",
                "priority": "normal",
                "targets": {"resolution": resolution},
            }
        )
    writer.flush()
    metrics = Metrics()
    feed = MetricsFeed(metrics)
    assert feed.seed_open_tickets(engine) == 3
    engine.dispose()
    assert feed.open_tickets() == {
        ("crm", "request", "normal", "breached"): 1,
        ("crm", "request", "normal", "at_risk"): 1,
        ("web", "request", "normal", "on_track"): 1,
    }
    # a later message for a seeded ticket moves it rather than counting it twice
    feed.observe_ticket_state(
        base
        | {
            "ticket_id": "T-2",
            "status": "resolved",
            "channel": "crm",
            "kind": "request",
            "priority": "normal",
            "version": 3,
            "targets": {},
        }
    )
    assert (
        metrics.registry.get_sample_value(
            "tawasul_tickets_open", {"channel": "crm", "kind": "request", "priority": "normal", "sla_state": "at_risk"}
        )
        == 0
    )

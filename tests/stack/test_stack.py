"""The deployment itself, run natively: docker-compose.yml's Tawasul services with their own
commands and environment, the real Prometheus with deploy/prometheus, the real Alertmanager with
deploy/alertmanager, the shared broker and PostgreSQL; a scripted scenario in accelerated time
(`compose_native.TIME_SCALE`: a minute of a rule's `for:` or window lasts a second).

What it proves (docs/monitoring.md, "What the tests prove"):
- every Tawasul service of the compose file starts with its command and environment (real
  secrets given, so the placeholder check lets it start) and passes its own health check;
- every scrape target of prometheus.yml is up, and each role's real scrape passes
  `promtool check metrics`;
- the clean phase delivers no alert at all;
- each alert of alerts.yml reaches the webhook during the phase meant to trigger it, within its
  `for:` plus two evaluation intervals (plus `DELIVERY_SLACK_S` for Alertmanager's scaled
  group wait and the round trips) of going pending, with its labels and annotations (or, for the
  few in `HELD_BY_INHIBITION`, reaches Alertmanager and is held by the inhibition meant for it;
  `NOT_TRIGGERED` lists, with reasons, what this scenario cannot trigger);
- every PromQL expression of every Grafana panel returns at least one series afterwards
  (`ALLOWED_EMPTY_PANELS` lists the exceptions with their reasons);
- the series alerts_test.yml feeds promtool have the label names the processes really emit.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from sqlalchemy import create_engine, text

from producers.publisher import EventPublisher
from schemas import parse_event
from tawasul.infra.settings import Settings
from tests.stack import scenario
from tests.stack.compose_native import (
    REPO,
    TIME_SCALE,
    NativeStack,
    free_port,
    load_compose,
    native_stack,
    prometheus_config,
    scaled_alertmanager,
    scaled_rules,
)
from tests.stack.harness import (
    Process,
    PrometheusApi,
    TcpProxy,
    Webhook,
    alertmanager_alerts,
    soft_wait,
    spawn,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(600)]

STALL_S = 32.0
"""How long the stalled worker stays stopped at least (its oldest waiting events are then late by more
than the 30 s of TawasulProcessingDelayHigh, a threshold not scaled: it is the pipeline's own delay)."""
EVALUATION_S = 1.0
DELIVERY_SLACK_S = 2.0
"""Beyond `for:` + two evaluations: Alertmanager's scaled group wait (at most 0.5 s), the notifier's
and the webhook's round trips, on a loaded 2-core machine."""
"""Scrape and rule evaluation interval of the test's Prometheus."""
ALERTS = REPO / "deploy/prometheus/alerts.yml"
DASHBOARDS = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))

PHASES: dict[str, set[str]] = {
    "clean": set(),
    "ticket breach": {
        "TawasulSlaBreachFacility",
        "TawasulSlaBreach",
        "TawasulSlaBreachLowPriorityKind",
        "TawasulUrgentFacilityTicketsBreachedOpen",
        "TawasulSlaBreachRatioHigh",
        "TawasulAtRiskTicketsSurge",
        "TawasulSlaBudgetFastBurn",
        "TawasulSlaBudgetSlowBurn",
        "TawasulDeadlineDelayHigh",
    },
    "satisfaction dip": {"TawasulSatisfactionBelowTarget"},
    "service-level dip": {
        "TawasulCallServiceLevelLow",
        "TawasulCallsWaitingTooLong",
        "TawasulTooManyCallsWaiting",
        "TawasulWalkInQueueLong",
    },
    "stalled worker": {
        "TawasulTargetDown",
        "TawasulWorkerLagHigh",
        "TawasulWorkerEventsStale",
        "TawasulProcessingDelayHigh",
    },
    "database outage": {"TawasulDatabaseDown"},
    "dead letters": {"TawasulDeadLetters"},
}
"""The alerts each phase must deliver to the webhook (first delivery inside the phase)."""

HELD_BY_INHIBITION: dict[str, tuple[str, str]] = {
    "TawasulPipelineStalled": ("database outage", "TawasulDatabaseDown"),
    "TawasulConsumerLagGrowing": ("database outage", "TawasulDatabaseDown"),
}
"""Alert -> (its phase, the alert whose inhibition holds it back there): Prometheus fires it and
Alertmanager must hold it, inhibited by that alert (deploy/alertmanager: the sink's stall and lag
follow from its database being down, which already pages)."""

NOT_TRIGGERED: dict[str, str] = {
    "TawasulDatabaseErrors": "the sink retries its database with a doubling backoff (0.5 s to 10 s, not scaled): "
    "it counts at most 5 errors in a 10 s (scaled 10 min) window, and the rule needs "
    "more than 5; during an outage TawasulDatabaseDown (equal job) would hold it back "
    "anyway; promtool tests it",
}
"""Alerts this scenario cannot trigger, with the reason (each is covered by promtool's unit tests)."""

ALLOWED_EMPTY_PANELS: dict[tuple[str, str], str] = {}
"""(dashboard uid, panel title) -> why its query may return nothing after the scenario."""


def _alert_rules() -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def _seconds(duration: str | None) -> float:
    if not duration:
        return 0.0
    return sum(
        int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", duration)
    )


def test_every_alert_has_a_phase_or_a_reason() -> None:
    names = set(_alert_rules())
    planned = set().union(*PHASES.values())
    assert planned | set(NOT_TRIGGERED) | set(HELD_BY_INHIBITION) == names
    assert not planned & set(NOT_TRIGGERED)
    assert not set(HELD_BY_INHIBITION) & (planned | set(NOT_TRIGGERED))
    for phase, source in HELD_BY_INHIBITION.values():
        assert source in PHASES[phase], f"{source} must be delivered in {phase} to hold back what it inhibits"


# --- the stack -------------------------------------------------------------------------------


class Stack:
    """The running deployment and what the test reads from it."""

    def __init__(self, tmp: Path, kafka: str, database: str, proxy: TcpProxy, prefix: str) -> None:
        self.tmp, self.kafka, self.prefix, self.proxy = tmp, kafka, prefix, proxy
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.secrets = {
            "TAWASUL_PSEUDONYM_KEY": secrets.token_hex(24),
            "TAWASUL_GATEWAY_CRM_SECRET": secrets.token_hex(24),
            "TAWASUL_GATEWAY_PBX_SECRET": secrets.token_hex(24),
            "POSTGRES_PASSWORD": secrets.token_hex(12),
        }
        overrides = {
            "TAWASUL_KAFKA": kafka,
            "TAWASUL_DATABASE_URL": database,
            "TAWASUL_TOPIC_PREFIX": prefix,
            "TAWASUL_LOG_LEVEL": "warning",
        }
        tawasul = str(Path(sys.executable).parent / "tawasul")
        self.native: NativeStack = native_stack(
            load_compose(), tawasul=tawasul, environ=self.secrets, overrides=overrides, volumes_dir=tmp / "volumes"
        )
        self.processes: dict[str, Process] = {}
        self.ports: set[int] = set(self.native.ports.values()) | {proxy.port}
        self.prometheus: PrometheusApi | None = None
        self.alertmanager = ""
        self.webhook: Webhook | None = None
        self.active_at: dict[tuple[str, str], set[float]] = {}
        """(alert name, labels) -> every time it went pending (an alert may resolve and come back)."""
        self._watching = threading.Event()
        self.publisher: EventPublisher | None = None

    # processes
    def base_env(self) -> dict[str, str]:
        return {key: value for key, value in os.environ.items() if not key.startswith("TAWASUL_")}

    def start_services(self) -> None:
        for name in self.native.start_order():
            service = self.native.services[name]
            process = spawn(name, service.argv, self.base_env() | service.environment, self.logs)
            self.processes[name] = process
            if service.one_shot:
                try:
                    code = process.popen.wait(timeout=180)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"{name} did not finish:\n{process.tail()}")
                assert code == 0, f"{name} exited with {code}:\n{process.tail()}"
            elif service.healthcheck:

                def healthy(check: list[str] = service.healthcheck, process: Process = process) -> bool:
                    assert process.popen.poll() is None, f"{process.name} exited:\n{process.tail()}"
                    return subprocess.run(check, capture_output=True, timeout=10).returncode == 0

                wait_for(f"{name}'s health check", healthy, timeout_s=120)

    def start_alerting(self) -> None:
        taken = set(self.ports)
        self.webhook = Webhook(free_port(taken))
        am_port, prom_port = free_port(taken), free_port(taken)
        self.ports |= {am_port, prom_port}
        am_config = self.tmp / "alertmanager.yml"
        am_config.write_text(scaled_alertmanager(self.webhook.url), encoding="utf-8")
        self.processes["alertmanager"] = spawn(
            "alertmanager",
            [
                _tool("prometheus-alertmanager", "alertmanager"),
                f"--config.file={am_config}",
                f"--storage.path={self.tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            self.base_env(),
            self.logs,
        )
        self.alertmanager = f"http://127.0.0.1:{am_port}"
        wait_for("Alertmanager ready", lambda: urllib.request.urlopen(f"{self.alertmanager}/-/ready", timeout=2), 60)
        rules = self.tmp / "alerts.yml"
        rules.write_text(scaled_rules(ALERTS.read_text(encoding="utf-8")), encoding="utf-8")
        config = prometheus_config(
            self.native,
            rules=rules,
            alertmanager=f"127.0.0.1:{am_port}",
            own=f"127.0.0.1:{prom_port}",
            interval=f"{EVALUATION_S:g}s",
        )
        (self.tmp / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.processes["prometheus"] = spawn(
            "prometheus",
            [
                _tool("prometheus"),
                f"--config.file={self.tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            self.base_env(),
            self.logs,
        )
        self.prometheus = PrometheusApi(f"http://127.0.0.1:{prom_port}")
        wait_for("Prometheus ready", lambda: urllib.request.urlopen(f"{self.prometheus.base}/-/ready", timeout=2), 60)
        threading.Thread(target=self._watch_alerts, daemon=True).start()

    def _watch_alerts(self) -> None:
        """Record when each alert (name + labels) first went pending in Prometheus."""
        while not self._watching.is_set():
            try:
                for alert in self.api.alerts():
                    key = (alert["labels"]["alertname"], _label_key(alert["labels"]))
                    self.active_at.setdefault(key, set()).add(_epoch(alert["activeAt"]))
            except Exception:  # noqa: BLE001 - Prometheus busy: try again
                pass
            time.sleep(0.25)

    @property
    def api(self) -> PrometheusApi:
        assert self.prometheus is not None
        return self.prometheus

    @property
    def gateway(self) -> scenario.Gateway:
        port = self.native.services["gateway"].ports[next(iter(self.native.services["gateway"].ports))]
        return scenario.Gateway(
            port,
            crm=scenario.Adapter("crm", self.secrets["TAWASUL_GATEWAY_CRM_SECRET"].encode()),
            pbx=scenario.Adapter("pbx-main", self.secrets["TAWASUL_GATEWAY_PBX_SECRET"].encode()),
        )

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Events written straight to the events topic, past the gateway, as `tawasul publish` does:
        for what no adapter of the example secrets may send, and while the gateway's database is away."""
        if self.publisher is None:
            self.publisher = EventPublisher(
                Settings(kafka=self.kafka, topic_prefix=self.prefix), client_id="tawasul-stack-test"
            )
        for event in events:
            self.publisher.publish(parse_event(event))
        self.publisher.flush(30)

    def look_at_the_wall(self) -> None:
        """What a wall screen does every few seconds."""
        port = next(iter(self.native.services["wallboard"].ports.values()))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/wallboard", timeout=10) as response:
            assert response.status == 200

    def stop(self) -> None:
        self._watching.set()
        if self.publisher is not None:
            self.publisher.close(10)
        for process in reversed(list(self.processes.values())):
            process.stop()
        if self.webhook is not None:
            self.webhook.close()


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"{names[0]} is missing: install the Debian packages prometheus and prometheus-alertmanager")


EXTERNAL_LABELS = frozenset(
    yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())["global"].get("external_labels", {})
)
"""Labels Prometheus adds to the alerts it sends (not shown by its own /api/v1/alerts)."""


def _label_key(labels: dict[str, str]) -> str:
    return json.dumps(
        {k: v for k, v in sorted(labels.items()) if k not in EXTERNAL_LABELS | {"alertname"}}, sort_keys=True
    )


def _epoch(stamp: str) -> float:
    stamp = re.sub(r"(\.\d{6})\d+", r"\1", stamp.replace("Z", "+00:00"))
    return datetime.fromisoformat(stamp).timestamp()


@pytest.fixture
def stack(tmp_path: Path, kafka_bootstrap: str, postgres_url: str) -> Iterator[Stack]:
    schema = f"stack_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    parts = urlsplit(postgres_url)
    taken: set[int] = set()
    proxy = TcpProxy(free_port(taken), (parts.hostname or "127.0.0.1", parts.port or 5432))
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    separator = "&" if parts.query else ""
    database = urlunsplit(
        (parts.scheme, netloc, parts.path, f"{parts.query}{separator}options=-csearch_path%3D{schema}", "")
    )
    running = Stack(tmp_path, kafka_bootstrap, database, proxy, prefix=f"stack{uuid.uuid4().hex[:8]}.")
    with ExitStack() as cleanup:
        cleanup.callback(lambda: _drop_schema(admin, schema))
        cleanup.callback(lambda: _delete_topics(kafka_bootstrap, running.prefix))
        cleanup.callback(proxy.close)
        cleanup.callback(running.stop)
        yield running
        _print_logs_on_failure(running)


def _delete_topics(bootstrap: str, prefix: str) -> None:
    """The run's topics (and the worker's changelogs) off the shared broker."""
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tawasul-stack-test-cleanup")
    try:
        mine = [name for name in client.list_topics() if name.startswith(prefix)]
        if mine:
            client.delete_topics(mine)
    finally:
        client.close()


def _drop_schema(admin: Any, schema: str) -> None:
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def _print_logs_on_failure(running: Stack) -> None:
    for process in running.processes.values():
        print(f"--- {process.name} (last lines)\n{process.tail(15)}")


# --- the scenario ----------------------------------------------------------------------------


class Scenario:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.gateway = stack.gateway
        self.rules = _alert_rules()
        self.windows: dict[str, tuple[float, float]] = {}
        self.timings: dict[str, float] = {}
        self.held: dict[str, tuple[float, dict[str, Any]]] = {}
        """Alert -> (when first seen, the alert) held in Alertmanager by the inhibition of HELD_BY_INHIBITION."""

    def all_held(self, phase: str) -> bool:
        """Record the alerts of `phase` that Alertmanager holds, inhibited by the alert meant to;
        True when every one of them is held."""
        expected = {name: source for name, (where, source) in HELD_BY_INHIBITION.items() if where == phase}
        alerts = alertmanager_alerts(self.stack.alertmanager)
        fingerprints = {a["fingerprint"]: a["labels"]["alertname"] for a in alerts}
        now = time.time()
        for alert in alerts:
            name = alert["labels"]["alertname"]
            if (
                name in expected
                and name not in self.held
                and expected[name] in {fingerprints.get(f) for f in alert["status"]["inhibitedBy"]}
            ):
                self.held[name] = (now, alert)
        return set(expected) <= set(self.held)

    def phase(self, name: str, trigger: Any, timeout_s: float) -> None:
        """Run `trigger`, then wait until every alert of the phase was delivered (or the timeout)."""
        webhook = self.stack.webhook
        assert webhook is not None
        started = time.time()
        trigger()
        expected = PHASES[name]

        def delivered() -> bool:
            names = {d.alert["labels"]["alertname"] for d in webhook.firing() if d.at >= started}
            return expected <= names

        if expected:
            try:
                wait_for(f"the alerts of phase {name!r}: {sorted(expected)}", delivered, timeout_s)
            except AssertionError:
                pass  # reported by the assertions below, with what did arrive
        else:
            time.sleep(timeout_s)
        self.windows[name] = (started, time.time())
        self.timings[name] = round(time.time() - started, 1)
        print(
            f"phase {name}: {self.timings[name]} s, delivered "
            f"{sorted({d.alert['labels']['alertname'] for d in webhook.firing() if d.at >= started})}",
            flush=True,
        )

    # triggers
    def clean(self) -> None:
        """Ordinary traffic: tickets resolved in time, satisfied surveys, calls answered at once."""
        for _ in range(8):
            tickets = [scenario.unique("T-clean") for _ in range(2)]
            calls = [scenario.unique("C-clean") for _ in range(2)]
            self.gateway.send(
                [
                    event
                    for call in calls
                    for event in (
                        scenario.call_offered(call, "stack", timedelta(seconds=5)),
                        scenario.call_answered(call, "stack"),
                    )
                ],
                self.gateway.pbx,
            )
            self.gateway.send(
                [
                    scenario.ticket_opened(tickets[0], "complaints_platform", "facility_report", "urgent"),
                    scenario.ticket_opened(tickets[1], "crm", "facility_report", "urgent"),
                    scenario.ticket_resolved(tickets[0]),
                    scenario.ticket_resolved(tickets[1]),
                    scenario.survey(tickets[1], "crm", 5),
                ]
            )
            self.gateway.send([scenario.survey(call, "call", 5) for call in calls], self.gateway.pbx)
            self.stack.look_at_the_wall()
            time.sleep(1)

    def ticket_breach(self) -> None:
        """Urgent mosque faults opened 5 hours ago (every one breaches at once) and two at risk,
        half of the CRM's breached too, old complaints and inquiries: breaches, tickets at risk,
        at-risk surge, burn rates, late deadlines."""
        old = timedelta(hours=5)
        # high-priority mosque faults (first response 2 h, warned at 1 h 30) opened 100 minutes ago: at risk
        self.gateway.send(
            [
                scenario.ticket_opened(
                    scenario.unique("T-risk"), "complaints_platform", "facility_report", "high", timedelta(minutes=100)
                )
                for _ in range(2)
            ]
        )
        self.gateway.send(
            [
                scenario.ticket_opened(scenario.unique("T-old"), "crm", "complaint", "normal", timedelta(days=30))
                for _ in range(3)
            ]
            + [
                scenario.ticket_opened(scenario.unique("T-old"), "web", "inquiry", "normal", timedelta(days=30))
                for _ in range(2)
            ]
        )
        for _ in range(20):
            fresh = scenario.unique("T-met")
            self.gateway.send(
                [
                    scenario.ticket_opened(
                        scenario.unique("T-late"), "complaints_platform", "facility_report", "urgent", old
                    ),
                    scenario.ticket_opened(scenario.unique("T-late"), "crm", "facility_report", "urgent", old),
                    scenario.ticket_opened(scenario.unique("T-late"), "crm", "facility_report", "urgent", old),
                    scenario.ticket_opened(fresh, "crm", "facility_report", "urgent"),
                    scenario.ticket_resolved(fresh),
                ]
            )
            time.sleep(1)

    def satisfaction_dip(self) -> None:
        """Thirty callers answered at once, each unhappy (a survey counts under its known call)."""
        calls = [scenario.unique("C-unhappy") for _ in range(30)]
        self.gateway.send(
            [
                event
                for call in calls
                for event in (
                    scenario.call_offered(call, "stack", timedelta(seconds=4)),
                    scenario.call_answered(call, "stack"),
                )
            ],
            self.gateway.pbx,
        )
        self.gateway.send([scenario.survey(call, "call", 1) for call in calls], self.gateway.pbx)

    def service_level_dip(self) -> None:
        waiting = [scenario.call_offered(scenario.unique("C-wait"), "stack", timedelta(minutes=3)) for _ in range(12)]
        late = [scenario.unique("C-late") for _ in range(40)]
        self.gateway.send(
            waiting + [scenario.call_offered(c, "stack", timedelta(minutes=3)) for c in late], self.gateway.pbx
        )
        self.gateway.send([scenario.call_answered(c, "stack") for c in late], self.gateway.pbx)
        # no adapter of the example secrets sends walk-in visits: the centre's queue system publishes them
        self.stack.publish([scenario.visit_checked_in(scenario.unique("V-wait"), "stack_centre") for _ in range(16)])

    def stalled_worker(self) -> None:
        """SIGSTOP the worker while events keep coming, then SIGCONT: down, then behind."""
        worker = self.stack.processes["worker"].popen
        os.kill(worker.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            backlog = self.stack.tmp / "backlog.jsonl"
            with backlog.open("w", encoding="utf-8") as out:
                for _ in range(15000):
                    ticket = scenario.unique("T-bulk")
                    out.write(json.dumps(scenario.ticket_opened(ticket, "web", "request", "normal")) + "\n")
                    out.write(json.dumps(scenario.ticket_resolved(ticket)) + "\n")
            env = (
                self.stack.base_env()
                | {"TAWASUL_KAFKA": self.stack.kafka, "TAWASUL_TOPIC_PREFIX": self.stack.prefix}
                | self.stack.secrets
            )
            published = subprocess.run(
                [str(Path(sys.executable).parent / "tawasul"), "publish", "--no-progress", str(backlog)],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert published.returncode == 0, published.stdout + published.stderr
            soft_wait(
                "the worker's target to be reported down",
                lambda: any(d.alert["labels"]["alertname"] == "TawasulTargetDown" for d in self.stack.webhook.firing()),
                30,
            )  # type: ignore[union-attr]
            # the first events of the backlog wait more than TawasulProcessingDelayHigh's 30 s
            time.sleep(max(0.0, STALL_S - (time.monotonic() - stopped)))
        finally:
            os.kill(worker.pid, signal.SIGCONT)

    def database_outage(self) -> None:
        """Cut the sink's database while tickets keep coming (a hundred every half second, straight
        to Kafka: the gateway's replay protection lives in the same database, so it refuses them)
        until the outage is delivered and the sink's stall and growing lag are held by its inhibition."""
        webhook = self.stack.webhook
        assert webhook is not None
        started = time.time()
        self.stack.proxy.cut()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                self.stack.publish(
                    [
                        scenario.ticket_opened(scenario.unique("T-outage"), "crm", "request", "normal")
                        for _ in range(100)
                    ]
                )
                down = any(
                    d.alert["labels"]["alertname"] == "TawasulDatabaseDown" and d.at >= started
                    for d in webhook.firing()
                )
                if self.all_held("database outage") and down:
                    break
                time.sleep(0.5)
            print(
                "database outage:",
                self.stack.api.query("tawasul_consumer_lag_messages"),
                [(a["labels"]["alertname"], a["state"]) for a in self.stack.api.alerts()],
                flush=True,
            )
        finally:
            self.stack.proxy.restore()

    def dead_letters(self) -> None:
        bad = scenario.ticket_opened(scenario.unique("T-bad"), "crm", "request", "normal")
        bad["data"]["priority"] = "whenever"
        for _ in range(4):  # over a few scrapes, so the refusal and rejection rates have two samples
            status, answer = self.gateway.post([dict(bad, id=scenario.unique("bad"))])
            assert status == 400, answer
            time.sleep(1)


def test_the_compose_deployment_scrapes_alerts_and_answers_every_panel(stack: Stack) -> None:
    timings: dict[str, float] = {}
    began = time.monotonic()
    stack.start_services()
    timings["services started"] = round(time.monotonic() - began, 1)
    print(f"services started in {timings['services started']} s", flush=True)
    stack.start_alerting()
    api = stack.api

    # every scrape target of prometheus.yml is up; each role's real scrape is valid
    config = yaml.safe_load((stack.tmp / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    wait_for(
        "every scrape target up", lambda: {t["labels"]["job"] for t in api.targets() if t["health"] == "up"} == jobs, 60
    )
    for target in api.targets():
        if target["labels"]["job"].startswith("tawasul-"):
            with urllib.request.urlopen(target["scrapeUrl"], timeout=10) as response:
                body = response.read()
            check = subprocess.run([_tool("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=30)
            assert (check.returncode, check.stdout, check.stderr) == (0, b"", b""), target["labels"]["job"]
    assert not api.query('tawasul_database_up{job!="tawasul-sink"}'), "only the sink exports the database gauge"

    run = Scenario(stack)
    run.phase("clean", run.clean, timeout_s=8)
    assert [d.alert["labels"]["alertname"] for d in stack.webhook.firing()] == [], "the clean phase alerted"  # type: ignore[union-attr]
    run.phase("ticket breach", run.ticket_breach, timeout_s=60)
    run.phase("satisfaction dip", run.satisfaction_dip, timeout_s=70)
    run.phase("service-level dip", run.service_level_dip, timeout_s=45)
    run.phase("stalled worker", run.stalled_worker, timeout_s=60)
    run.phase("database outage", run.database_outage, timeout_s=10)
    run.phase("dead letters", run.dead_letters, timeout_s=20)
    timings |= run.timings
    timings["total"] = round(time.monotonic() - began, 1)
    print(f"stack test timings (s): {timings}")

    problems = (
        _alert_problems(stack, run) + _held_problems(stack, run) + _panel_problems(api) + _series_shape_problems(api)
    )
    assert problems == [], "\n".join(problems)


def _alert_problems(stack: Stack, run: Scenario) -> list[str]:
    """Each phase's alerts delivered in the phase, in time, with their labels and annotations."""
    problems: list[str] = []
    webhook = stack.webhook
    assert webhook is not None
    first: dict[str, Any] = {}
    for delivery in webhook.firing():
        first.setdefault(delivery.alert["labels"]["alertname"], delivery)
    held = {a["labels"]["alertname"] for a in alertmanager_alerts(stack.alertmanager) if a["status"]["inhibitedBy"]}
    for phase, names in PHASES.items():
        started, ended = run.windows[phase]
        for name in sorted(names):
            delivery = first.get(name)
            if delivery is None:
                problems.append(
                    f"{phase}: {name} never reached the webhook" + (" (held by an inhibition)" if name in held else "")
                )
                continue
            if not started <= delivery.at <= ended:
                problems.append(f"{phase}: {name} first reached the webhook outside its phase")
            rule = run.rules[name]
            labels, annotations = delivery.alert["labels"], delivery.alert["annotations"]
            for key, value in rule["labels"].items():
                if labels.get(key) != value:
                    problems.append(f"{name}: label {key}={labels.get(key)!r}, expected {value!r}")
            for key in ("summary", "summary_ar", "runbook_url"):
                if not annotations.get(key):
                    problems.append(f"{name}: annotation {key} missing")
            active = max(
                (t for t in stack.active_at.get((name, _label_key(labels)), ()) if t <= delivery.at), default=None
            )
            allowed = _seconds(rule.get("for")) / TIME_SCALE + 2 * EVALUATION_S + DELIVERY_SLACK_S
            if active is None:
                problems.append(f"{name}: never seen pending in Prometheus")
            elif delivery.at - active > allowed:
                problems.append(
                    f"{name}: delivered {delivery.at - active:.1f} s after going pending "
                    f"(for: + 2 evaluations + group wait = {allowed:.1f} s)"
                )
    return problems


def _held_problems(stack: Stack, run: Scenario) -> list[str]:
    """Each alert of HELD_BY_INHIBITION reached Alertmanager in its phase, in time, with its labels
    and annotations, and was held there by the inhibition meant for it (`Scenario.all_held`)."""
    problems: list[str] = []
    for name, (phase, source) in sorted(HELD_BY_INHIBITION.items()):
        if name not in run.held:
            problems.append(f"{phase}: {name} was never held in Alertmanager, inhibited by {source}")
            continue
        seen, alert = run.held[name]
        started, ended = run.windows[phase]
        if not started <= seen <= ended:
            problems.append(f"{phase}: {name} was held outside its phase")
        rule = run.rules[name]
        for key, value in rule["labels"].items():
            if alert["labels"].get(key) != value:
                problems.append(f"{name}: label {key}={alert['labels'].get(key)!r}, expected {value!r}")
        for key in ("summary", "summary_ar", "runbook_url"):
            if not alert["annotations"].get(key):
                problems.append(f"{name}: annotation {key} missing")
        active = max(
            (t for t in stack.active_at.get((name, _label_key(alert["labels"])), ()) if t <= seen), default=None
        )
        allowed = _seconds(rule.get("for")) / TIME_SCALE + 2 * EVALUATION_S + DELIVERY_SLACK_S
        if active is None:
            problems.append(f"{name}: never seen pending in Prometheus")
        elif seen - active > allowed:
            problems.append(
                f"{name}: reached Alertmanager {seen - active:.1f} s after going pending "
                f"(for: + 2 evaluations + slack = {allowed:.1f} s)"
            )
    return problems


def _panel_problems(api: PrometheusApi) -> list[str]:
    problems = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in _panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                expr = _substitute(target["expr"])
                if (dashboard["uid"], panel["title"]) in ALLOWED_EMPTY_PANELS:
                    continue
                if not api.query(expr):
                    problems.append(f"{dashboard['uid']} / {panel['title']}: no series for {expr}")
    return problems


def _panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _panels(item.get("panels", []))


def _substitute(expr: str) -> str:
    """Grafana's variables as a viewer of the dashboard after the scenario would have them."""
    for variable, value in (
        ("$__rate_interval", "30s"),
        ("$__range", "10m"),
        ("$window", "24h"),
        ("$channel", ".*"),
        ("$queue", ".*"),
        ("$kind", ".*"),
    ):
        expr = expr.replace(variable, value)
    return expr


def _series_shape_problems(api: PrometheusApi) -> list[str]:
    """The label names of every series alerts_test.yml feeds promtool are those the processes emit."""
    problems = []
    tests = yaml.safe_load((REPO / "deploy/prometheus/alerts_test.yml").read_text())
    for case in tests["tests"]:
        for series in case["input_series"]:
            match = re.fullmatch(r"([\w:]+)\{(.*)\}", series["series"])
            assert match, series["series"]
            name, labels = match.group(1), set(re.findall(r"(\w+)=", match.group(2)))
            if name == "up":
                continue
            real = {frozenset(set(s) - {"__name__"}) for s in api.series(name)}
            if not real:
                problems.append(f"alerts_test.yml feeds {name}, which the stack never emitted")
            elif frozenset(labels) not in real:
                problems.append(
                    f"alerts_test.yml: {name} with labels {sorted(labels)}; the processes emit "
                    f"{sorted(sorted(r) for r in real)}"
                )
    return problems

"""Alert rules, Alertmanager and Grafana files: promtool/amtool checks, metric names, and a real
Prometheus server that scrapes our endpoint and fires the SLA-breach alert."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from schemas import new_event
from sinks.metrics_feed import MetricsFeed
from tawasul.infra.metrics import Metrics
from tawasul.infra.metrics_server import start_metrics_server

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
}
BUILTIN_SERIES = {"up"}
"""Series Prometheus itself records for every target."""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install the Debian packages prometheus and prometheus-alertmanager")
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=60)


# -- metric names -------------------------------------------------------------------------------
def declared_series() -> set[str]:
    """Every series name `tawasul.infra.metrics` can expose, from the `# TYPE` lines of its exposition."""
    names: set[str] = set()
    for line in generate_latest(Metrics().declare_all().registry).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= {f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count")} if kind == "histogram" else {name}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and numbers removed)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    text = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue
        if match.group(0).lower() not in PROMQL_WORDS:
            names.add(match.group(0))
    return names


def all_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def rule_expressions() -> dict[str, str]:
    """Alert name -> expression (the alerting rules only)."""
    return {rule["alert"]: rule["expr"] for rule in all_rules() if "alert" in rule}


def recorded_series() -> set[str]:
    """The series the recording rules of alerts.yml define (usable by alerts and dashboards)."""
    return {rule["record"] for rule in all_rules() if "record" in rule}


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield item
            yield from panels(item.get("panels", []))

    exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert match, f"unexpected variable query {query!r}"
        exprs.append(match.group(1))
    return exprs


def test_metric_name_extraction_finds_unknown_names() -> None:
    expr = (
        'sum by (channel) (increase(foo_total{outcome="x", le="0.5"}[5m])) / on (channel) bar '
        "> 1e3 and histogram_quantile(0.99, rate(baz_bucket[$__rate_interval])) offset 5m"
    )
    assert metric_names(expr) == {"foo_total", "bar", "baz_bucket"}
    assert "tawasul_sla_outcomes_total" in declared_series()
    assert "tawasul_event_processing_delay_seconds_bucket" in declared_series()


def test_alert_rules_use_only_declared_metrics() -> None:
    known = declared_series() | BUILTIN_SERIES | recorded_series()
    used = {name: metric_names(expr) for name, expr in rule_expressions().items()}
    assert all(used.values())
    used |= {rule["record"]: metric_names(rule["expr"]) for rule in all_rules() if "record" in rule}
    assert {name: names - known for name, names in used.items() if names - known} == {}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_are_valid_and_use_only_declared_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == path.stem and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid and panel["targets"], panel["title"]
    exprs = dashboard_expressions(dashboard)
    known = declared_series() | BUILTIN_SERIES | recorded_series()
    unknown = {expr: metric_names(expr) - known for expr in exprs if metric_names(expr) - known}
    assert unknown == {}
    assert {m for expr in exprs for m in metric_names(expr)} >= {
        "tawasul-operations": {"tawasul_sla_outcomes_total", "tawasul_tickets_open", "tawasul_satisfaction_ratio"},
        "tawasul-pipeline": {
            "tawasul_consumer_lag_messages",
            "tawasul_database_up",
            "tawasul_worker_consumer_lag_messages",
            "tawasul_gateway_refusals_total",
        },
        "tawasul-sla": {
            "tawasul_sla_outcomes_total",
            "tawasul_tickets_open",
            "tawasul:sla_resolution_burn_rate:ratio_rate1h",
        },
    }[path.stem]


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/tawasul.yml").read_text())
    compose_file = REPO / "docker-compose.yml"
    compose = yaml.safe_load(compose_file.read_text()) if compose_file.exists() else None
    path = provider["providers"][0]["options"]["path"]
    assert {p.stem for p in DASHBOARDS} == {"tawasul-operations", "tawasul-pipeline", "tawasul-sla"}
    if compose is not None:
        mounts = compose["services"]["grafana"]["volumes"]
        assert f"./deploy/grafana/dashboards:{path}:ro" in mounts


# -- promtool / amtool -----------------------------------------------------------------------
def test_promtool_checks_rules_and_config() -> None:
    rules = run(tool("promtool"), "check", "rules", str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(all_rules())} rules found" in rules.stdout
    config = run(tool("promtool"), "check", "config", "--syntax-only", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [
        case
        for test in yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    alerts = set(rule_expressions())
    assert alerts - {case["alertname"] for case in cases if case.get("exp_alerts")} == set()
    assert alerts - {case["alertname"] for case in cases if not case.get("exp_alerts")} == set()


def test_alertmanager_config_is_valid_and_routes_by_team_and_severity() -> None:
    config = DEPLOY / "alertmanager" / "alertmanager.yml"
    check = run(tool("amtool"), "check-config", str(config))
    assert check.returncode == 0, check.stdout + check.stderr
    for labels, receiver in (
        (("team=customer-service", "severity=critical"), "customer-service-critical"),
        (("team=customer-service", "severity=warning"), "customer-service-warning"),
        (("team=customer-service", "severity=info"), "customer-service-info"),
        (("team=platform", "severity=critical"), "platform-critical"),
        (("team=platform", "severity=warning"), "platform-warning"),
        (("severity=critical",), "tawasul-default"),
    ):
        route = run(tool("amtool"), "config", "routes", "test", f"--config.file={config}", "alertname=X", *labels)
        assert route.stdout.strip() == receiver, (labels, route.stdout, route.stderr)


def test_every_alert_routes_to_a_team_receiver() -> None:
    config = DEPLOY / "alertmanager" / "alertmanager.yml"
    for rule in all_rules():
        if "alert" in rule:
            labels = [f"{key}={value}" for key, value in rule["labels"].items()]
            route = run(
                tool("amtool"),
                "config",
                "routes",
                "test",
                f"--config.file={config}",
                f"alertname={rule['alert']}",
                *labels,
            )
            assert route.stdout.strip() == f"{rule['labels']['team']}-{rule['labels']['severity']}", rule["alert"]


def test_every_inhibition_is_limited_by_equal_labels_that_both_sides_carry() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    alerts = {rule["alert"]: rule for rule in all_rules() if "alert" in rule}
    for inhibition in config["inhibit_rules"]:
        assert inhibition.get("equal"), inhibition
        source = re.fullmatch(r'alertname="(\w+)"', inhibition["source_matchers"][0])
        assert source is not None and source.group(1) in alerts
        grouping = set(re.findall(r"by \(([^)]*)\)", alerts[source.group(1)]["expr"]))
        kept = {label.strip() for labels in grouping for label in labels.split(",")}
        # a rule without aggregation keeps every label of its series (job, instance ...)
        assert set(inhibition["equal"]) <= kept or not grouping, (source.group(1), inhibition["equal"])


RUNBOOKS = REPO / "docs" / "runbooks.md"


def runbook_anchors() -> set[str]:
    """The GitHub-style anchors of the `## ` sections of docs/runbooks.md."""
    headings = re.findall(r"(?m)^## (.+)$", RUNBOOKS.read_text(encoding="utf-8"))
    return {re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_every_alert_has_severity_team_bilingual_summary_and_a_runbook_section() -> None:
    anchors = runbook_anchors()
    for rule in all_rules():
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["labels"]["team"] in {"customer-service", "platform"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and re.search(r"[\u0600-\u06FF]", annotations["summary_ar"]), name
        assert annotations["runbook_url"] == f"docs/runbooks.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/runbooks.md has no section ## {name}"
    assert anchors == {name.lower() for name in rule_expressions()}


def test_rules_hold_for_the_prometheus_of_compose_too() -> None:
    """Compose runs Prometheus 3.x; these machines have the Debian 2.x (no 3.x can be installed).
    The rules are checked and unit-tested by the 2.x promtool; what 3.0 changed that could alter
    them is ruled out here: no function 3.0 renamed (holt_winters); no range that ends exactly on
    a sample matters (3.0 left-opens ranges: every window here is at least 5 scrape intervals
    long). 3.0 also lets a regex `.` match a newline: no label value of ours holds one."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert compose["services"]["prometheus"]["image"].startswith("prom/prometheus:v3.")
    version = run(tool("prometheus"), "--version")
    assert re.search(r"version 2\.", version.stdout + version.stderr)
    for rule in all_rules():
        expr = rule["expr"]
        assert "holt_winters" not in expr
        for window in re.findall(r"\[(\d+)([smh])\]", expr):
            seconds = int(window[0]) * {"s": 1, "m": 60, "h": 3600}[window[1]]
            assert seconds >= 5 * 15, expr


# -- a real Prometheus ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        payload = json.loads(response.read())
    assert payload["status"] == "success"
    return payload["data"]


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}; last: {last!r}")


def breach(ticket: str, channel: str, kind: str, event: str = "sla.breached") -> Any:
    at = "2025-03-04T13:00:00+04:00"
    return new_event(
        event,
        ticket,
        at,
        {
            "ticket_id": ticket,
            "target": "resolution",
            "policy": "mosque-urgent",
            "deadline": at,
            "channel": channel,
            "kind": kind,
            "category": "mosque.air_conditioning",
            "priority": "urgent",
        },
        "/stream-processors/sla",
        id=f"{ticket}:resolution:{event}:0",
    )


def test_real_prometheus_fires_the_breach_alert(tmp_path: Path) -> None:
    metrics = Metrics()
    feed = MetricsFeed(metrics)
    metrics.db_up.set(1)
    feed.observe_outcome(breach("T-ok", "crm", "request", "sla.met"))
    port = free_port()
    with start_metrics_server(metrics.registry, port=0, host="127.0.0.1") as endpoint:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ALERTS)],
                    "scrape_configs": [
                        {"job_name": "tawasul-sink", "static_configs": [{"targets": [f"127.0.0.1:{endpoint.port}"]}]}
                    ],
                }
            )
        )
        server = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("w"),
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for("Prometheus ready", lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200)
            wait_for(
                "three scrapes",
                lambda: api(base, "/api/v1/query", query="count_over_time(tawasul_database_up[1m]) >= 3")["result"],
            )

            def rule_states() -> dict[str, str]:
                groups = api(base, "/api/v1/rules", type="alert")["groups"]
                return {rule["name"]: rule["state"] for group in groups for rule in group["rules"]}

            scraped = time.time()

            def evaluated_since_scrape() -> bool:
                groups = api(base, "/api/v1/rules", type="alert")["groups"]
                return all(_epoch(group["lastEvaluation"]) > scraped for group in groups)

            wait_for("a rule evaluation after the healthy scrapes", evaluated_since_scrape)
            healthy = rule_states()
            assert len(healthy) == len(rule_expressions())
            assert {name: state for name, state in healthy.items() if state != "inactive"} == {}

            feed.observe_outcome(breach("T-late", "complaints_platform", "facility_report"))

            def breach_alerts() -> list[dict[str, Any]]:
                alerts = api(base, "/api/v1/alerts")["alerts"]
                return [
                    a
                    for a in alerts
                    if a["labels"]["alertname"].startswith("TawasulSlaBreach") and a["state"] == "firing"
                ]

            firing = wait_for("the SLA-breach alert to fire", breach_alerts)
            assert [
                (
                    a["labels"]["alertname"],
                    a["labels"]["severity"],
                    a["labels"]["channel"],
                    a["labels"]["kind"],
                    a["labels"]["target"],
                )
                for a in firing
            ] == [("TawasulSlaBreachFacility", "critical", "complaints_platform", "facility_report", "resolution")]
            assert firing[0]["annotations"]["summary"].startswith("Mosque facility report missed")

            metrics.db_up.set(0)
            wait_for("the database alert to go pending", lambda: rule_states()["TawasulDatabaseDown"] == "pending")
            states = rule_states()
            # every resolution of facility reports decided so far was breached: its budget burns too
            assert {name for name, state in states.items() if state != "inactive"} == {
                "TawasulSlaBreachFacility",
                "TawasulDatabaseDown",
                "TawasulSlaBudgetFastBurn",
                "TawasulSlaBudgetSlowBurn",
            }
        finally:
            server.terminate()
            server.wait(timeout=20)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", stamp.replace("Z", "+00:00"))).timestamp()

"""The KPI processor on the real broker: published snapshots equal the figures computed from the events.

A worker subprocess runs `build_app(mode="replay")` with `register_kpis` (so the SLA engine
feeds the ticket backlog too). A day and a half of simulated traffic is published, then the
end-of-input watermark (as `tawasul replay` sends it); the latest `kpi.snapshot` of
every key must equal what the period report's code (`tawasul.domain.report`, i.e. the formulas
of `tawasul.domain.kpis`) computes from the same events over each window's span. The second
test kills the worker (SIGKILL) half-way and restarts it, and re-sends some events (duplicates):
the final snapshots are the same.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from producers.simulator import Params, iter_events, parse_when
from schemas import Event, parse_event
from stream_processors.kpi_agent import KpiConfigError, config_from_env, snapshot_event
from stream_processors.runner import send_end_of_input
from tawasul.domain import kpis
from tawasul.domain.kpi_state import Row, normalised_points, scope, snapshot_key
from tawasul.domain.policies import load_policies
from tawasul.domain.report import build_report
from tawasul.domain.windows import WINDOW_NAMES, to_us, window_span
from tawasul.infra.settings import Settings, default_policies_path
from tawasul.infra.topics import EVENTS, KPIS, ensure_topics
from tests.support.kafka import read_all, unique

REPO = Path(__file__).resolve().parents[2]
RUNNER = """
import sys
from tawasul.infra.logs import configure_logging
from tawasul.infra.settings import Settings
from stream_processors.app import build_app
from stream_processors.kpi_agent import register_kpis
from stream_processors.runner import run_until
configure_logging("info")
settings = Settings(kafka=sys.argv[1], topic_prefix=sys.argv[2])
app = build_app(settings, mode="replay", app_id=sys.argv[3], extra_registrars=(register_kpis,),
                datadir=__import__("pathlib").Path(sys.argv[4]))
app.conf.broker_session_timeout = 10.0
run_until(app, lambda: False)
"""
Expected = dict[str, float | None]


@dataclass(frozen=True)
class Run:
    settings: Settings
    app_id: str
    workdir: Path


@pytest.fixture(scope="module")
def scenario() -> list[Event]:
    start = parse_when("2025-03-04")
    params = Params(start, start + timedelta(hours=36), seed=23, scale=0.08, tag="kpi")
    return [parse_event(raw) for raw in iter_events(params)]


@pytest.fixture
def run(kafka_bootstrap: str, tmp_path: Path) -> Run:
    prefix = unique("kpit") + "."
    settings = Settings(kafka=kafka_bootstrap, topic_prefix=prefix)
    ensure_topics(kafka_bootstrap, prefix)
    return Run(settings, prefix + "app", tmp_path)


def start_worker(run: Run, name: str) -> subprocess.Popen[bytes]:
    log = (run.workdir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUNNER,
            run.settings.kafka,
            run.settings.topic_prefix,
            run.app_id,
            str(run.workdir / "data"),
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TAWASUL_KPI_THRESHOLDS": ""},
    )


def publish(run: Run, events: list[Event]) -> None:
    producer = KafkaProducer(bootstrap_servers=run.settings.kafka)
    try:
        for event in events:
            producer.send(run.settings.topic(EVENTS.name), key=event.subject.encode(), value=event.to_json())
        producer.flush()
    finally:
        producer.close()


def latest_snapshots(run: Run) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for _, _, key, value in read_all(run.settings.kafka, [run.settings.topic(KPIS.name)]):
        body = json.loads(value)
        snapshot = parse_event(body)  # a valid contract event
        assert snapshot.type == "kpi.snapshot" and key is not None and snapshot.subject == key.decode()
        latest[key.decode()] = body["data"]
    return latest


def _subjects_where(events: list[Event], kind: str, field: str, value: str) -> set[str]:
    return {e.subject for e in events if e.type == kind and getattr(e.data, field) == value}


def expected_figures(events: list[Event]) -> tuple[datetime, Expected]:
    """The figures of every window at the latest event time, from the report's code and `kpis`."""
    as_of = max(e.time for e in events)
    book = load_policies(default_policies_path())
    out: Expected = {}
    queues = sorted({e.data.queue for e in events if e.type == "call.offered"})
    centres = sorted({e.data.centre for e in events if e.type == "visit.checked_in"})
    sections = {"C": "call", "T": "ticket", "V": "visit"}
    surveyed = {sections[e.subject[0]] for e in events if e.type == "survey.submitted"}
    for window in WINDOW_NAMES:
        start, end = window_span(window, as_of)
        report = build_report(events, start, end, book).to_json()
        _calls(out, window, (), report["calls"])
        _walk_in(out, window, (), report["walk_in"])
        for contact, section in (
            ("call", report["calls"]),
            ("ticket", report["tickets"]),
            ("visit", report["walk_in"]),
        ):
            if contact not in surveyed:
                continue  # no survey about this kind of contact: the scope does not exist
            out[snapshot_key("surveys.responses", window, scope(contact=contact))] = section["surveys"]
            out[snapshot_key("surveys.satisfaction", window, scope(contact=contact))] = section["satisfaction"]
        for kind, group in report["tickets"]["by_kind"].items():
            if group["surveys"]:
                out[snapshot_key("surveys.satisfaction", window, scope(kind=kind))] = group["satisfaction"]
        total_surveys = sum(s["surveys"] for s in (report["calls"], report["tickets"], report["walk_in"]))
        out[snapshot_key("surveys.responses", window, ())] = total_surveys
        out[snapshot_key("surveys.average_score", window, ())] = _average_score(events, start, end)
        for queue in queues:
            mine = _subjects_where(events, "call.offered", "queue", queue)
            part = build_report([e for e in events if e.subject in mine], start, end, book).to_json()
            _calls(out, window, scope(queue=queue), part["calls"])
        for centre in centres:
            mine = _subjects_where(events, "visit.checked_in", "centre", centre)
            part = build_report([e for e in events if e.subject in mine], start, end, book).to_json()
            _walk_in(out, window, scope(centre=centre), part["walk_in"])
    whole = build_report(events, as_of - timedelta(days=30), as_of + timedelta(microseconds=1), book).to_json()
    out[snapshot_key("tickets.open", "now", ())] = whole["tickets"]["opened"] - whole["tickets"]["resolved"]
    out[snapshot_key("calls.waiting", "now", ())] = _waiting(events, as_of)
    return as_of, out


def _calls(out: Expected, window: str, where: tuple[tuple[str, str], ...], calls: dict[str, Any]) -> None:
    for figure, field in (
        ("offered", "offered"),
        ("answered", "answered"),
        ("abandoned", "abandoned"),
        ("answered_within_threshold", "answered_within_threshold"),
        ("service_level", "service_level"),
        ("average_speed_of_answer_seconds", "average_speed_of_answer_seconds"),
        ("average_handle_seconds", "average_handle_seconds"),
        ("abandon_ratio", "abandon_ratio"),
    ):
        out[snapshot_key(f"calls.{figure}", window, where)] = calls[field]
    if where:
        out[snapshot_key("surveys.satisfaction", window, where)] = calls["satisfaction"]


def _walk_in(out: Expected, window: str, where: tuple[tuple[str, str], ...], walk_in: dict[str, Any]) -> None:
    for figure, field in (
        ("checked_in", "visits"),
        ("called", "called"),
        ("completed", "completed"),
        ("no_show", "no_show"),
        ("average_wait_seconds", "average_wait_seconds"),
    ):
        out[snapshot_key(f"visits.{figure}", window, where)] = walk_in[field]
    if where:
        out[snapshot_key("surveys.satisfaction", window, where)] = walk_in["satisfaction"]


def _average_score(events: list[Event], start: datetime, end: datetime) -> float | None:
    known = {e.subject for e in events if e.type in ("call.offered", "ticket.opened", "visit.checked_in")}
    points = [
        normalised_points(e.data.score, e.data.scale)
        for e in events
        if e.type == "survey.submitted" and start <= e.time < end and e.subject in known
    ]
    return kpis.average(sum(points), len(points))


def _waiting(events: list[Event], as_of: datetime) -> int:
    offered = {e.subject: e.time for e in events if e.type == "call.offered"}
    done = {e.subject for e in events if e.type in ("call.answered", "call.abandoned", "call.ended")}
    return sum(1 for s, t in offered.items() if s not in done and t >= as_of - timedelta(hours=4))


def differences(latest: dict[str, dict[str, Any]], as_of: datetime | None, expected: Expected) -> list[str]:
    """What differs; `as_of` None skips the check of the clock."""
    problems = []
    for key, value in expected.items():
        got = latest.get(key)
        if got is None:
            problems.append(f"{key}: no snapshot, expected {value}")
        elif got["value"] != value:
            problems.append(f"{key}: {got['value']} != {value}")
    newest = max((datetime.fromisoformat(d["as_of"]) for d in latest.values()), default=None)
    if as_of is not None and newest != as_of:
        problems.append(f"as_of {newest} != {as_of}")
    return problems


def wait_for(
    run: Run, as_of: datetime | None, expected: Expected, worker: subprocess.Popen[bytes], timeout_s: float = 180.0
) -> dict[str, dict[str, Any]]:
    give_up = time.monotonic() + timeout_s
    problems: list[str] = ["nothing read yet"]
    latest: dict[str, dict[str, Any]] = {}
    while time.monotonic() < give_up:
        assert worker.poll() is None, "worker died:\n" + "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(run.workdir.glob("*.log"))
        )
        latest = latest_snapshots(run)
        problems = differences(latest, as_of, expected)
        if not problems:
            return latest
        time.sleep(2)
    pytest.fail(f"{len(problems)} figures differ, e.g.:\n" + "\n".join(problems[:15]))


def finish(run: Run, as_of: datetime, expected: Expected, worker: subprocess.Popen[bytes]) -> None:
    """Once every event is in the figures, send the end-of-input watermark as `tawasul replay` does.

    The SLA engine holds the last `lateness` (5 min) of ticket events until then, so the
    backlog and the clock (which follows the ticket states too) are checked only afterwards.
    """
    wait_for(run, None, {k: v for k, v in expected.items() if not k.startswith("tickets.")}, worker)
    send_end_of_input(run.settings, as_of)


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_published_figures_equal_those_computed_from_the_events(
    run: Run, scenario: list[Event], workers: list[subprocess.Popen[bytes]]
) -> None:
    as_of, expected = expected_figures(scenario)
    assert expected[snapshot_key("calls.offered", "24h", ())] and expected[snapshot_key("tickets.open", "now", ())]
    assert expected[snapshot_key("calls.offered", "today", ())] != expected[snapshot_key("calls.offered", "24h", ())]
    workers.append(start_worker(run, "worker"))
    publish(run, scenario)
    finish(run, as_of, expected, workers[0])
    latest = wait_for(run, as_of, expected, workers[0])
    # every snapshot is a valid contract event with its key made of figure, window and scope
    data = latest[snapshot_key("calls.service_level", "half_year", ())]
    assert (
        data["count"]
        == expected[snapshot_key("calls.answered", "half_year", ())]
        + expected[snapshot_key("calls.abandoned", "half_year", ())]
    )
    assert to_us(datetime.fromisoformat(data["as_of"])) <= to_us(as_of)


def test_a_killed_and_restarted_worker_ends_with_the_same_figures(
    run: Run, scenario: list[Event], workers: list[subprocess.Popen[bytes]]
) -> None:
    as_of, expected = expected_figures(scenario)
    half = len(scenario) // 2
    workers.append(start_worker(run, "worker"))
    publish(run, scenario[:half])
    give_up = time.monotonic() + 120
    while not latest_snapshots(run) and time.monotonic() < give_up:
        time.sleep(1)
    assert latest_snapshots(run), "no snapshot after the first half"
    workers[0].send_signal(signal.SIGKILL)  # no clean shutdown: offsets and changelog as they were
    workers[0].wait(30)
    publish(run, scenario[half:] + scenario[:200])  # and contract duplicates, which change nothing
    workers.append(start_worker(run, "restarted"))
    finish(run, as_of, expected, workers[1])
    wait_for(run, as_of, expected, workers[1])


def test_snapshot_events_are_contract_events() -> None:
    row = Row("calls.service_level", "15m", scope(queue="general"), 0.8125, 48)
    at = to_us(datetime.fromisoformat("2025-03-04T10:15:00+04:00"))
    event = parse_event(json.loads(snapshot_event(row, at)))
    assert (event.type, event.subject, event.source) == (
        "kpi.snapshot",
        "calls.service_level|15m|queue=general",
        "/stream-processors/kpi",
    )
    assert event.time.isoformat() == "2025-03-04T10:15:00+04:00"
    assert event.data.to_dict() == {
        "figure": "calls.service_level",
        "window": "15m",
        "scope": {"queue": "general"},
        "value": 0.8125,
        "count": 48,
        "as_of": "2025-03-04T10:15:00+04:00",
    }
    empty = json.loads(snapshot_event(Row("calls.offered", "today", (), 3.0, 3), at))
    assert (
        empty["data"]["value"] == 3
        and isinstance(empty["data"]["value"], int)
        and empty["subject"] == "calls.offered|today|"
    )
    none = parse_event(json.loads(snapshot_event(Row("calls.service_level", "1h", (), None, 0), at)))
    assert none.data.value is None
    assert snapshot_event(row, at) != snapshot_event(row, at)  # a fresh id each time


def test_thresholds_from_the_environment() -> None:
    config = config_from_env({"TAWASUL_KPI_THRESHOLDS": "general=20, zakat = 30"})
    assert dict(config.thresholds) == {"general": 20, "zakat": 30}
    assert config.threshold_us("zakat") == 30_000_000 and config.threshold_us("mosques") == 20_000_000
    assert dict(config_from_env({}).thresholds) == {}
    with pytest.raises(KpiConfigError, match="TAWASUL_KPI_THRESHOLDS"):
        config_from_env({"TAWASUL_KPI_THRESHOLDS": "general:20"})

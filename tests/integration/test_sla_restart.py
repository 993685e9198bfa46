"""kill -9 of the live worker mid-stream: after a restart every outcome is there once (by id), no breach lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import Event, new_event
from stream_processors.sla_agent import INDEX_MESSAGE, READY_MESSAGE
from tawasul.infra.settings import Settings
from tests.integration.test_sla_stream import prefixed_settings, publish, read_outcomes

REPO = Path(__file__).resolve().parents[2]
TARGET = timedelta(seconds=20)
POLICIES = """\
calendars:
  always: {timezone: Asia/Dubai, always_open: true}
policies:
  - name: restart
    match: {}
    calendar: always
    first_response: 20s
    resolution: 1h
    warn_at: 0.6
"""


class WorkerProcess:
    """`tawasul worker` in a subprocess; collects its JSON log lines."""

    def __init__(
        self, settings: Settings, app_id: str, state_dir: Path, metrics_port: int = 0, extra_args: tuple[str, ...] = ()
    ) -> None:
        env = {
            **os.environ,
            "TAWASUL_KAFKA": settings.kafka,
            "TAWASUL_POLICIES": str(settings.policies),
            "TAWASUL_TOPIC_PREFIX": settings.topic_prefix,
            "TAWASUL_LOG_LEVEL": "info",
            "TAWASUL_STATE_DIR": str(state_dir),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stream_processors.worker_cmd",
                "--metrics-port",
                str(metrics_port),
                "--app-id",
                app_id,
                *extra_args,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.logs: list[dict[str, object]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.logs.append(json.loads(line))
            except ValueError:
                self.logs.append({"message": line.rstrip()})

    def wait_ready(self, timeout_s: float = 45.0) -> float:
        """Seconds until the worker's timers run on all six partitions."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if any(
                e.get("message") == READY_MESSAGE and len(e.get("partitions", ())) == 6  # type: ignore[arg-type]
                for e in self.logs
            ):
                return time.monotonic() - started
            assert self.proc.poll() is None, f"worker exited early: {self.logs[-20:]}"
            time.sleep(0.1)
        raise AssertionError(f"worker not ready within {timeout_s} s: {self.logs[-20:]}")

    def index_rebuilds(self) -> list[dict[str, object]]:
        return [e for e in self.logs if e.get("message") == INDEX_MESSAGE]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def scrape_and_stop(self, port: int) -> dict[str, float]:
        """Check that the worker still runs, read its /metrics, then stop it cleanly (exit 0)."""
        assert self.proc.poll() is None, "the worker died"
        figures = scrape(port)
        assert self.terminate() == 0
        return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """Sum of each sample name on the worker's /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"|{k}={v}" for k, v in sorted(sample.labels.items()) if k == "outcome")
            sums[key] = sums.get(key, 0.0) + sample.value
    return sums


def opened(ticket: str, at: datetime) -> Event:
    data = {"channel": "crm", "kind": "request", "category": "licensing.renewal", "priority": "normal"}
    return new_event("ticket.opened", ticket, at, data, "/channels/test/restart", id=f"{ticket}-open")


@pytest.mark.parametrize("local_state", ["kept", "lost"])
def test_kill_9_mid_stream_loses_no_breach(kafka_bootstrap: str, tmp_path: Path, local_state: str) -> None:
    """`kept`: restarted on the same machine, from its local RocksDB state; `lost`: as if on
    another machine, from the changelog alone."""
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    settings = prefixed_settings(kafka_bootstrap, policies, f"sla-restart-{local_state}")
    app_id = f"{settings.topic_prefix}worker"
    events_topic = settings.topic("tawasul.events")
    state_dir = tmp_path / "state"
    first = WorkerProcess(settings, app_id, state_dir)
    try:
        first.wait_ready()
        now = datetime.now(UTC)
        count = 120
        # opened 14 s ago .. now: deadlines from 6 s to 20 s ahead, warnings from 2 s ago to 12 s ahead
        tickets = [
            (f"T-restart-{i}", now - timedelta(seconds=14) + i * timedelta(seconds=14) / count) for i in range(count)
        ]
        publish(kafka_bootstrap, events_topic, [opened(t, at) for t, at in tickets])
        time.sleep(max(0.0, (now + timedelta(seconds=11)).timestamp() - time.time()))
    finally:
        first.kill()
    killed_at = datetime.now(UTC)
    if local_state == "lost":
        shutil.rmtree(state_dir)
    port = free_port()
    second = WorkerProcess(settings, app_id, state_dir, metrics_port=port)
    try:
        recovery_s = second.wait_ready()
        print(f"restart to timers running: {recovery_s:.1f} s")
        assert recovery_s < 30
        rebuilds = second.index_rebuilds()
        assert sum(int(r["tickets"]) for r in rebuilds) == count  # type: ignore[call-overload]
        read = sum(int(r["changelog_records"]) for r in rebuilds)  # type: ignore[call-overload]
        print(f"changelog records read on recovery: {read}")
        if local_state == "kept":
            assert read < count // 4, "the restart did not resume from the local state"
        else:
            assert read >= count
        # events keep coming after the restart: the last ten tickets are answered before their deadline
        answered = {t for t, at in tickets[-10:] if at + TARGET > datetime.now(UTC) + timedelta(seconds=1)}
        assert answered, "the restart took too long for the scenario"
        publish(
            kafka_bootstrap,
            events_topic,
            [
                new_event("ticket.acknowledged", t, datetime.now(UTC), {}, "/channels/test/restart", id=f"{t}-ack")
                for t in sorted(answered)
            ],
        )
        last_deadline = max(at for _, at in tickets) + TARGET
        time.sleep(max(0.0, last_deadline.timestamp() - time.time()) + 2.0)
        figures = scrape(port)
        assert second.terminate() == 0
    finally:
        if second.proc.poll() is None:
            second.kill()

    outcomes = [e for e, _ in read_outcomes(settings)]
    unique = {e.id: e for e in outcomes}
    expected: dict[str, str] = {}
    for ticket, _at in tickets:
        expected[f"{ticket}:first_response:sla.warning:0"] = "sla.warning"
        if ticket in answered:
            expected[f"{ticket}:first_response:sla.met:0"] = "sla.met"
        else:
            expected[f"{ticket}:first_response:sla.breached:0"] = "sla.breached"
    assert {i: e.type for i, e in unique.items()} == expected
    print(f"outcome records: {len(outcomes)}, distinct: {len(unique)}")
    # the restarted worker counted what it published itself: the breaches after the kill, on time
    breached_after_restart = figures.get("tawasul_sla_outcomes_emitted_total|outcome=breached", 0)
    assert 0 < breached_after_restart <= count - len(answered)
    assert figures["tawasul_sla_deadline_delay_seconds_count"] >= breached_after_restart
    assert figures.get("tawasul_sla_outcomes_emitted_total|outcome=met", 0) == len(answered)
    deadlines_before_kill = sum(1 for _, at in tickets if at + TARGET < killed_at)
    assert 0 < deadlines_before_kill < count, "the kill did not happen mid-stream"
    for event in unique.values():
        if event.type == "sla.breached":
            assert event.data.deadline == dict(tickets)[event.subject] + TARGET


QUICK_POLICIES = POLICIES.replace("first_response: 20s", "first_response: 3s")


def test_local_state_beyond_a_recreated_changelog_is_discarded(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The broker's data wiped, or the changelog deleted: the worker's local databases have
    reached offsets the new changelog does not have. Faust would refuse to start on them; the
    worker discards them, says so, starts, and keeps firing deadlines."""
    from kafka import KafkaAdminClient

    from stream_processors.table_store import changelog_topic, persisted_offset
    from tawasul.infra.topics import partition_end_offsets

    policies = tmp_path / "policies.yaml"
    policies.write_text(QUICK_POLICIES)
    settings = prefixed_settings(kafka_bootstrap, policies, "sla-stale")
    app_id, state_dir = f"{settings.topic_prefix}stale", tmp_path / "state"
    changelog = changelog_topic(app_id, "sla")
    first = WorkerProcess(settings, app_id, state_dir)
    try:
        first.wait_ready()
        publish(
            kafka_bootstrap,
            settings.topic("tawasul.events"),
            [opened(f"T-stale-{i}", datetime.now(UTC)) for i in range(12)],
        )
        give_up = time.monotonic() + 30
        while sum(partition_end_offsets(kafka_bootstrap, [changelog]).values()) < 12 and time.monotonic() < give_up:
            time.sleep(0.5)
        assert first.terminate() == 0
    finally:
        if first.proc.poll() is None:
            first.kill()
    databases = sorted(state_dir.glob(f"{app_id}/v*/tables/sla-*.db"))
    recorded = {int(path.name.removesuffix(".db").rsplit("-", 1)[1]): persisted_offset(path) for path in databases}
    assert any(offset is not None for offset in recorded.values()), recorded

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.delete_topics([changelog])
    finally:
        admin.close()
    give_up = time.monotonic() + 30
    while partition_end_offsets(kafka_bootstrap, [changelog]) and time.monotonic() < give_up:
        time.sleep(0.5)

    second = WorkerProcess(settings, app_id, state_dir)
    try:
        second.wait_ready()
        discarded = {
            int(e["partition"])
            for e in second.logs  # type: ignore[call-overload]
            if str(e.get("message", "")).startswith("local table state is beyond the end of its changelog")
        }
        assert discarded == {p for p, offset in recorded.items() if offset is not None}
        publish(kafka_bootstrap, settings.topic("tawasul.events"), [opened("T-stale-new", datetime.now(UTC))])
        give_up = time.monotonic() + 30
        breached: set[str] = set()
        while "T-stale-new" not in breached and time.monotonic() < give_up:
            time.sleep(1.0)
            breached = {e.subject for e, _ in read_outcomes(settings) if e.type == "sla.breached"}
        assert "T-stale-new" in breached
        assert second.terminate() == 0
    finally:
        if second.proc.poll() is None:
            second.kill()

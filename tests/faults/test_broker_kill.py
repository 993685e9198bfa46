"""Fault 1: a 3-broker cluster (replication 3, min in-sync 2) loses the leader of its busiest
partition to SIGKILL, twice, while `tawasul replay` runs; each killed node is restarted with
`tawasul kafka start`. The replay's clients recover by themselves (the same process runs on),
and the database equals the oracle: the report equals the pure domain computation from the
input file, and every input event is stored once.

CI size: three simulated days at scale 4 (about 20,000 events); `TAWASUL_FAULTS_FULL=1`: scale 10.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from schemas import parse_event
from tawasul.domain.period import parse_period
from tawasul.domain.policies import default_policy_path, load_policies
from tawasul.domain.report import build_report
from tawasul.infra.kafka_local.broker import _is_ours
from tests.faults.conftest import FULL, REPO, LocalCluster, _child_env, judged_report, run_tawasul, simulated

pytestmark = pytest.mark.kafka
DAYS = ("2025-03-02", "2025-03-05")


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated(tmp_path_factory, "broker-kill", scale="10" if FULL else "4", days=DAYS)


def _busiest_leader(bootstrap: str, topic_suffix: str, known: set[str]) -> tuple[str, int, int]:
    """(topic, partition, leader node id) of the partition of the run's `topic_suffix` topic
    (one not in `known`) that holds the most records."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + 60
        while True:
            runs = [t for t in admin.list_topics() if t.endswith(topic_suffix) and t not in known]
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(runs) == 1, runs
        topic = runs[0]
        described = admin.describe_topics([topic])[0]["partitions"]
        ends = consumer.end_offsets([TopicPartition(topic, p["partition_index"]) for p in described])
        busiest = max(described, key=lambda p: ends[TopicPartition(topic, p["partition_index"])])
        return topic, busiest["partition_index"], busiest["leader_id"]
    finally:
        consumer.close()
        admin.close()


def _kill(cluster: LocalCluster, node_id: int) -> None:
    pid = next(node["pid"] for node in cluster.status()["nodes"] if node["id"] == node_id)  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _is_ours(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _expected(path: Path) -> dict[str, object]:
    events = [parse_event(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    period = parse_period(*DAYS)
    return build_report(events, period.start, period.end, load_policies(default_policy_path())).to_json()


@pytest.mark.timeout(900)
def test_a_replay_survives_the_busiest_leader_killed_twice(
    three_brokers: LocalCluster, days: Path, tmp_path: Path
) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=three_brokers.bootstrap)
    known = set(admin.list_topics())
    admin.close()
    db = f"sqlite:///{tmp_path / 'faults.db'}"
    env = {**three_brokers.env, "TAWASUL_DATABASE_URL": db}
    replay = subprocess.Popen(
        [sys.executable, "-m", "tawasul", "replay", str(days), "--no-progress", "--keep-topics", "--timeout", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(env),
        cwd=REPO,
    )
    lines: list[str] = []
    publishing = threading.Event()

    started = time.monotonic()

    def follow() -> None:
        assert replay.stderr is not None
        for line in replay.stderr:
            lines.append(f"{time.monotonic() - started:6.1f} {line}")
            if "replay: publishing" in line:
                publishing.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    kills: list[tuple[str, int, int, bool, float]] = []
    try:
        assert publishing.wait(180), "".join(lines)[-3000:]
        for suffix in ("tawasul.events", "tawasul.sla.outcomes"):
            time.sleep(1.0)
            topic, partition, leader = _busiest_leader(three_brokers.bootstrap, suffix, known)
            _kill(three_brokers, leader)
            kills.append((topic, partition, leader, replay.poll() is None, round(time.monotonic() - started, 1)))
            restarted = three_brokers.kafka("start", timeout=300)
            assert restarted.returncode == 0, restarted.stderr[-3000:]
            assert f"starting Kafka node {leader}" in restarted.stderr
        status = replay.wait(timeout=700)
    finally:
        if replay.poll() is None:
            replay.kill()
        reader.join(timeout=10)
    output = "".join(lines)
    assert status == 0, output[-4000:]
    assert kills[0][3] and kills[1][3], f"a kill came after the replay had ended: {kills}\n{output[-3000:]}"
    assert all(node["running"] for node in three_brokers.status()["nodes"])  # type: ignore[union-attr]
    sent = [json.loads(line)["id"] for line in days.read_text(encoding="utf-8").splitlines() if line]
    stored = re.search(r"stored: events (\d+)", output)
    assert stored is not None and int(stored.group(1)) == len(set(sent)), output[-2000:]
    report = run_tawasul("report", "--from", DAYS[0], "--to", DAYS[1], "--format", "json", env=env)
    assert report.returncode == 0, report.stderr[-2000:]
    assert judged_report(report.stdout) == _expected(days)
    print(f"killed (topic, partition, leader, replay still running, seconds): {kills}\n{output[-1500:]}")

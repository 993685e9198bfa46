"""`tawasul kafka start --brokers 3`: status as JSON, a killed node restarted alone, and every
topic Tawasul (or faust for it) creates replicated 3 times with 2 in-sync replicas required."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tawasul.infra.kafka_local.broker import _is_ours
from tests.faults.conftest import LocalCluster, run_tawasul

pytestmark = pytest.mark.kafka


def _configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
        return {
            name: {key: entry["value"] for key, entry in entries.items()}
            for name, entries in described["topic"].items()
        }
    finally:
        admin.close()


def _replicas(bootstrap: str, topics: list[str]) -> dict[str, set[int]]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + 30
    try:
        while True:  # a just-created topic may not be in every broker's metadata yet
            found = {
                topic["name"]: {len(p["replica_nodes"]) for p in topic["partitions"]}
                for topic in admin.describe_topics(topics)
            }
            if all(found.values()) or time.monotonic() > deadline:
                return found
            time.sleep(0.3)
    finally:
        admin.close()


def test_status_json_names_every_node_with_its_pid(three_brokers: LocalCluster) -> None:
    found = three_brokers.status()
    assert set(found) == {"bootstrap", "nodes"}
    assert found["bootstrap"] == three_brokers.bootstrap
    nodes = found["nodes"]
    assert [node["id"] for node in nodes] == [1, 2, 3]  # type: ignore[index, union-attr]
    for node in nodes:  # type: ignore[union-attr]
        assert set(node) == {"id", "port", "pid", "running"}
        assert node["running"] is True and _is_ours(node["pid"])
    assert ",".join(f"localhost:{node['port']}" for node in nodes) == found["bootstrap"]  # type: ignore[union-attr]


def test_start_again_restarts_only_the_node_that_is_down(three_brokers: LocalCluster) -> None:
    before = {node["id"]: node["pid"] for node in three_brokers.status()["nodes"]}  # type: ignore[union-attr]
    os.kill(before[2], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _is_ours(before[2]) and time.monotonic() < deadline:
        time.sleep(0.2)
    down = three_brokers.status()
    assert [node["running"] for node in down["nodes"]] == [True, False, True]  # type: ignore[union-attr]
    again = three_brokers.kafka("start", timeout=300)  # no flags: the saved shape
    assert again.returncode == 0, again.stderr[-3000:]
    assert "starting Kafka node 2" in again.stderr
    assert "node 1" not in again.stderr and "node 3" not in again.stderr
    after = {node["id"]: node["pid"] for node in three_brokers.status()["nodes"]}  # type: ignore[union-attr]
    assert after[1] == before[1] and after[3] == before[3] and after[2] != before[2]


def test_topics_are_replicated_three_times_with_two_in_sync_required(three_brokers: LocalCluster) -> None:
    prefix = f"rf-{uuid.uuid4().hex[:8]}."
    created = run_tawasul("topics", "create", "--prefix", prefix, env=three_brokers.env)
    assert created.returncode == 0, created.stderr[-2000:]
    names = [f"{prefix}tawasul.events", f"{prefix}tawasul.kpis", f"{prefix}tawasul.tickets.state"]
    assert _replicas(three_brokers.bootstrap, names) == {name: {3} for name in names}
    configs = _configs(three_brokers.bootstrap, names)
    assert {name: configs[name]["min.insync.replicas"] for name in names} == {name: "2" for name in names}
    assert configs[f"{prefix}tawasul.kpis"]["cleanup.policy"] == "compact"


def test_settings_override_the_defaults_and_too_few_replicas_are_named(three_brokers: LocalCluster) -> None:
    prefix = f"rf2-{uuid.uuid4().hex[:8]}."
    env = {**three_brokers.env, "TAWASUL_KAFKA_REPLICATION_FACTOR": "2", "TAWASUL_KAFKA_MIN_INSYNC_REPLICAS": "2"}
    created = run_tawasul("topics", "create", "--prefix", prefix, env=env)
    assert created.returncode == 0, created.stderr[-2000:]
    events = f"{prefix}tawasul.events"
    assert _replicas(three_brokers.bootstrap, [events]) == {events: {2}}
    assert _configs(three_brokers.bootstrap, [events])[events]["min.insync.replicas"] == "2"
    # the defaults now want 3: the topics of 2 are named, nothing is created or changed
    refused = run_tawasul("topics", "create", "--prefix", prefix, env=three_brokers.env)
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in refused.stderr
    assert f"{events} has 2 replica(s)" in lines[0] and "TAWASUL_KAFKA_REPLICATION_FACTOR is 3" in lines[0]


def test_faust_changelogs_get_the_same_replication(three_brokers: LocalCluster, tmp_path: os.PathLike[str]) -> None:
    """A replay through the faust agents: their changelog topics have 3 replicas and min in-sync 2."""
    from kafka import KafkaAdminClient

    from tests.faults.conftest import REPO

    events = REPO / "tests" / "data" / "csv" / "events.csv"
    assert events.exists()
    file = os.path.join(tmp_path, "one.jsonl")
    simulate = run_tawasul(
        "simulate",
        "--from",
        "2025-03-02",
        "--to",
        "2025-03-03",
        "--scale",
        "0.02",
        "--tail",
        "--out",
        file,
        "--no-progress",
        env={},
    )
    assert simulate.returncode == 0, simulate.stderr
    db = f"sqlite:///{os.path.join(tmp_path, 'f.db')}"
    replay = run_tawasul(
        "replay",
        file,
        "--no-progress",
        "--engine",
        "faust",
        "--keep-topics",
        "--timeout",
        "240",
        env={**three_brokers.env, "TAWASUL_DATABASE_URL": db},
    )
    assert replay.returncode == 0, replay.stderr[-3000:]
    admin = KafkaAdminClient(bootstrap_servers=three_brokers.bootstrap)
    try:
        changelogs = [name for name in admin.list_topics() if name.endswith("-changelog")]
    finally:
        admin.close()
    assert changelogs
    assert set().union(*_replicas(three_brokers.bootstrap, changelogs).values()) == {3}
    assert {configs["min.insync.replicas"] for configs in _configs(three_brokers.bootstrap, changelogs).values()} == {
        "2"
    }

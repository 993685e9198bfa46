"""Session fixtures of the fault suite: a private 3-node cluster and a private secured node,
started with `tawasul kafka start` in their own homes and on their own ports (never the
session broker's), stopped at the end.

Ports: brokers from `TAWASUL_FAULTS_PORT` (29120) up, controllers 200 above; the first block
of free ports is taken. `TAWASUL_FAULTS_FULL=1` runs the larger sizes.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tawasul.infra.kafka_local.broker import BrokerLayout, bind_error, default_home

REPO = Path(__file__).resolve().parents[2]
FULL = os.environ.get("TAWASUL_FAULTS_FULL", "") not in ("", "0")
CONTROLLER_OFFSET = 200


@dataclass(frozen=True)
class LocalCluster:
    """A cluster started for the tests: its home, bootstrap and client environment."""

    home: Path
    bootstrap: str
    env: dict[str, str]
    """`TAWASUL_KAFKA` and, when secured, the `TAWASUL_KAFKA_...` settings printed by `start`."""
    command_lines: frozenset[str] = frozenset()
    """Every process command line seen on the machine while `tawasul kafka start` ran (secured node)."""

    def kafka(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_tawasul("kafka", *args, env={**self.env, "TAWASUL_HOME": str(self.home)}, timeout=timeout)

    def status(self) -> dict[str, object]:
        result = self.kafka("status", "--json", timeout=60)
        return json.loads(result.stdout)


def _child_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment minus its Kafka settings (each test says which it uses), plus `env`."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("TAWASUL_KAFKA")}
    return {**base, "TAWASUL_LOG_LEVEL": "warning", "PY": sys.executable, **env}


def run_tawasul(
    *args: str, env: dict[str, str], timeout: float = 600, stdin: str = "", cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """`tawasul ARGS` with `env` (see `_child_env`)."""
    return subprocess.run(
        [sys.executable, "-m", "tawasul", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=_child_env(env),
        cwd=cwd,
        timeout=timeout,
    )


def run_tawasul_shell(script: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A bash script (`$PY` is this Python) with `env` (see `_child_env`)."""
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=_child_env(env), cwd=REPO, timeout=timeout
    )


def read_values(bootstrap: str, topic: str, options: dict[str, object], timeout_s: float = 60) -> list[bytes]:
    """Every record value of `topic`, from its start to its current end."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"{topic} is not in the metadata"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"{topic} not read to its end in {timeout_s} s"
            for batch in consumer.poll(timeout_ms=500).values():
                values.extend(record.value for record in batch)
        return values
    finally:
        consumer.close()


def raw_app(bootstrap: str, group: str, datadir: Path, *, commit_interval_s: float) -> Any:
    """A bare faust app (raw keys and values, reading from the earliest offset) for the tests of
    Tawasul's guards against faust bugs; add an agent, run it with `stream_processors.runner.AppThread`."""
    import faust

    return faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        datadir=str(datadir),
        broker_commit_interval=commit_interval_s,
        key_serializer="raw",
        value_serializer="raw",
    )


def _free_block(count: int, first: int) -> int:
    """The first port from `first` (step 10) where `count` brokers and controllers can listen."""
    for base in range(first, first + 80, 10):
        ports = [base + k for k in range(count)] + [base + CONTROLLER_OFFSET + k for k in range(count)]
        if all(bind_error("127.0.0.1", port) is None for port in ports):
            return base
    raise RuntimeError(f"no {count} free ports from {first}")


def _home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A home that reuses the session broker's downloaded jars (no second Maven fetch)."""
    home = tmp_path_factory.mktemp(name)
    libs = BrokerLayout(home=default_home()).libs_dir
    target = BrokerLayout(home=home).libs_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    if libs.exists():
        target.symlink_to(libs, target_is_directory=True)
    return home


def _start(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_tawasul(
        "kafka", "start", *args, "--heap", "384m", "--timeout", "180", env={"TAWASUL_HOME": str(home)}, timeout=400
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="session")
def three_brokers(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[LocalCluster]:
    """A 3-node KRaft cluster (replication 3, min in-sync 2 by default); after the session broker,
    whose downloaded jars it shares."""
    home = _home(tmp_path_factory, "three-brokers")
    base = _free_block(3, int(os.environ.get("TAWASUL_FAULTS_PORT", "29120")))
    try:
        _start(
            home,
            "--brokers",
            "3",
            "--port",
            str(base),
            "--port-step",
            "1",
            "--controller-port",
            str(base + CONTROLLER_OFFSET),
        )
        bootstrap = ",".join(f"localhost:{base + k}" for k in range(3))
        yield LocalCluster(home, bootstrap, {"TAWASUL_KAFKA": bootstrap})
    finally:
        run_tawasul("kafka", "stop", env={"TAWASUL_HOME": str(home)}, timeout=200)


class CommandLines(threading.Thread):
    """Samples the command line of every process of the machine (`/proc/*/cmdline`) every 5 ms
    until stopped, keeping each distinct one (arguments joined by spaces)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            for path in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    raw = path.read_bytes()
                except OSError:  # the process ended
                    continue
                if raw:
                    self.seen.add(raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace"))
            self.stopped.wait(0.005)

    def stop(self) -> frozenset[str]:
        self.stopped.set()
        self.join(10)
        return frozenset(self.seen)


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[LocalCluster]:
    """One node with SASL_SSL and SCRAM-SHA-512 only; `env` holds what `start --secure` printed."""
    home = _home(tmp_path_factory, "secure-broker")
    base = _free_block(1, int(os.environ.get("TAWASUL_FAULTS_PORT", "29120")) + 40)
    try:
        sampler = CommandLines()
        sampler.start()
        try:
            started = _start(home, "--secure", "--port", str(base), "--controller-port", str(base + CONTROLLER_OFFSET))
        finally:
            command_lines = sampler.stop()
        yield LocalCluster(home, f"localhost:{base}", exported(started.stdout), command_lines)
    finally:
        run_tawasul("kafka", "stop", env={"TAWASUL_HOME": str(home)}, timeout=200)


def exported(stdout: str) -> dict[str, str]:
    """The `export NAME=value` lines of `tawasul kafka start --secure`, as a shell reads them."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        words = shlex.split(line)
        assert words[0] == "export" and len(words) == 2, f"not an export line: {line!r}"
        name, _, value = words[1].partition("=")
        found[name] = value
    return found


def simulated(tmp_path_factory: pytest.TempPathFactory, name: str, *, scale: str, days: tuple[str, str]) -> Path:
    """Simulated contact-centre days as a JSON Lines file."""
    path = tmp_path_factory.mktemp(name) / "days.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tawasul",
            "simulate",
            "--from",
            days[0],
            "--to",
            days[1],
            "--seed",
            "7",
            "--scale",
            scale,
            "--tail",
            "--out",
            str(path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="session")
def outage_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated day (full size: scale 4), the input of the database outage tests."""
    return simulated(tmp_path_factory, "outage-day", scale="4" if FULL else "1", days=("2025-03-03", "2025-03-04"))


def judged_report(stdout: str) -> dict[str, object]:
    """A `tawasul report --format json` output without its `policies` provenance, after checking
    that the figures were judged with the stored default book (what the oracle computes with)."""
    from tawasul.domain.policies import default_policy_path, policies_sha256

    report = json.loads(stdout)
    policies = report.pop("policies")
    assert policies["source"] == "stored", policies
    assert policies["sha256"] == policies_sha256(default_policy_path().read_text(encoding="utf-8")), policies
    return report

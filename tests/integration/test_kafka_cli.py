"""`tawasul kafka start|stop|status` on a second, private broker (its own home and ports)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tawasul.infra.kafka_local.broker import KAFKA_VERSION, BrokerLayout, default_home
from tests.support.kafka import create_topic, read_all
from tests.support.postgres import free_port


def _tawasul(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAWASUL_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tawasul", "kafka", *args], capture_output=True, text=True, env=env, timeout=180
    )


@pytest.fixture
def private_home(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Path]:
    """A broker home that reuses the session broker's downloaded jars (no second Maven fetch)."""
    home = tmp_path / "home"
    libs = BrokerLayout(home=default_home()).libs_dir
    target = BrokerLayout(home=home).libs_dir
    target.parent.mkdir(parents=True)
    if libs.exists():
        target.symlink_to(libs, target_is_directory=True)
    yield home


def test_start_twice_is_safe_and_stop_start_keeps_data(private_home: Path) -> None:
    port, controller = free_port(), free_port()
    ports = ["--port", str(port), "--controller-port", str(controller), "--heap", "512m"]
    status_ports = ports[:4]
    try:
        first = _tawasul(private_home, "start", *ports)
        assert first.returncode == 0, first.stderr
        assert "started" in first.stdout
        second = _tawasul(private_home, "start", *ports)
        assert second.returncode == 0 and "already running" in second.stdout
        running = _tawasul(private_home, "status", *status_ports)
        assert running.returncode == 0 and f"localhost:{port}" in running.stdout

        bootstrap = f"localhost:{port}"
        topic = create_topic(bootstrap, "kept-across-restart", partitions=2)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for n in range(50):
            producer.send(topic, key=str(n % 5).encode(), value=f"v{n}".encode())
        producer.flush()
        producer.close()

        stopped = _tawasul(private_home, "stop", *status_ports)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        after_stop = _tawasul(private_home, "status", *status_ports)
        assert after_stop.returncode == 3 and "stopped" in after_stop.stdout

        again = _tawasul(private_home, "start", *ports)
        assert again.returncode == 0, again.stderr
        values = sorted(value.decode() for _, _, _, value in read_all(bootstrap, [topic]))
        assert values == sorted(f"v{n}" for n in range(50))
    finally:
        _tawasul(private_home, "stop", *status_ports)


def test_port_in_use_gives_a_clear_error(private_home: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        result = _tawasul(private_home, "start", "--port", str(busy), "--controller-port", str(free_port()))
    assert result.returncode != 0
    assert f"port {busy}" in result.stderr and "in use" in result.stderr


def test_broker_jars_come_from_maven_with_the_pinned_version() -> None:
    libs = BrokerLayout(home=default_home()).libs_dir
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()
    assert (libs / ".complete").read_text(encoding="utf-8") == KAFKA_VERSION


@pytest.mark.parametrize(
    "command",
    [
        ["replay", "events.jsonl"],
        ["publish", "events.jsonl"],
        ["worker", "--metrics-port", "0"],
        ["sink", "--metrics-port", "0"],
        ["topics", "create"],
    ],
)
def test_a_broker_that_does_not_answer_is_named_without_a_traceback(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "events.jsonl").write_text("")
    unused = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "TAWASUL_KAFKA": unused,
        "TAWASUL_KAFKA_CONNECT_TIMEOUT": "2",
        "TAWASUL_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tawasul", *command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"error: Kafka at {unused} does not answer" in result.stderr
    assert "tawasul kafka start" in result.stderr and "Traceback" not in result.stderr


def test_a_connect_timeout_that_is_not_seconds_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "TAWASUL_KAFKA_CONNECT_TIMEOUT": "soon"}
    result = subprocess.run(
        [sys.executable, "-m", "tawasul", "topics", "create"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert "error: TAWASUL_KAFKA_CONNECT_TIMEOUT='soon': expected seconds" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_topic_with_another_partition_count_is_refused_by_name(kafka_bootstrap: str, tmp_path: Path) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    from tests.support.kafka import unique

    prefix = unique("layout") + "."
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(f"{prefix}tawasul.events", 3, 1), NewTopic(f"{prefix}tawasul.kpis.input", 2, 1)])
    finally:
        admin.close()
    env = {**os.environ, "TAWASUL_KAFKA": kafka_bootstrap, "TAWASUL_TOPIC_PREFIX": prefix}
    for command in (["topics", "create"], ["worker", "--metrics-port", "0"]):
        result = subprocess.run(
            [sys.executable, "-m", "tawasul", *command],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert (
            f"error: {prefix}tawasul.events has 3 partition(s), Tawasul needs 6, "
            f"{prefix}tawasul.kpis.input has 2 partition(s), Tawasul needs 1: delete the topic(s)"
        ) in result.stderr


def test_a_broker_that_does_not_answer_in_time_is_stopped_and_explained(private_home: Path) -> None:
    port, controller = free_port(), free_port()
    ports = ["--port", str(port), "--controller-port", str(controller)]
    try:
        result = _tawasul(private_home, "start", *ports, "--heap", "512m", "--timeout", "1")
        assert result.returncode == 1, result.stdout
        assert "the broker did not answer within 1 s (a slow machine may need --timeout)" in result.stderr
        assert f"last probe of localhost:{port}: " in result.stderr
        assert f"port {port} accepts connections: " in result.stderr
        assert "'Kafka Server started' in the log: " in result.stderr
        after = _tawasul(private_home, "status", *ports)
        assert after.returncode == 3 and "stopped" in after.stdout
    finally:
        _tawasul(private_home, "stop", *ports)


def test_alertmanager_on_its_default_ports_runs_beside_the_broker(kafka_bootstrap: str, tmp_path: Path) -> None:
    """docs/monitoring.md runs Alertmanager on its defaults (:9093, cluster :9094) next to the
    broker of `tawasul kafka start`, whose controller therefore keeps clear of both."""
    import shutil
    import time
    import urllib.request

    from tawasul.infra.kafka_local.broker import CONTROLLER_PORT, broker_answers

    assert CONTROLLER_PORT not in (9093, 9094)
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, "install the Debian package prometheus-alertmanager"
    config = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline, ready = time.monotonic() + 30, False
        while not ready and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:9093/-/ready", timeout=2) as response:  # noqa: S310
                    ready = response.status == 200
            except OSError:
                time.sleep(0.3)
        assert ready, f"Alertmanager did not start on :9093:\n{log.read_text(errors='replace')[-2000:]}"
        assert broker_answers(kafka_bootstrap, timeout_s=10)
    finally:
        process.terminate()
        process.wait(timeout=30)

"""Commands refuse settings they cannot use in one clear line, before they start anything:
no traceback, the file or database named (never its password), a non-zero exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import free_port

UNREACHABLE_POSTGRES = "postgresql+psycopg://tawasul:s3cret@127.0.0.1:{port}/tawasul"


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`tawasul ARGS` with no broker answering (so a command that reached for Kafka first would
    say so instead of naming the setting at fault)."""
    (tmp_path / "events.jsonl").write_text("")
    environment = {
        **os.environ,
        "TAWASUL_KAFKA": f"127.0.0.1:{free_port()}",
        "TAWASUL_KAFKA_CONNECT_TIMEOUT": "2",
        "TAWASUL_DATABASE_URL": f"sqlite:///{tmp_path / 'tawasul.db'}",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "tawasul", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
    )


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Background on this error" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(
    "command", [["replay", "events.jsonl"], ["worker"], ["report", "--from", "2025-01-01", "--to", "2025-02-01"]]
)
def test_a_missing_policy_file_is_named(tmp_path: Path, command: list[str]) -> None:
    line = one_clear_line(run(tmp_path, "--policies", str(tmp_path / "absent.yaml"), *command))
    assert str(tmp_path / "absent.yaml") in line and "No such file" in line


def test_an_invalid_policy_file_is_named_with_what_is_wrong(tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text("calendars: {}\npolicies: []\n")
    line = one_clear_line(run(tmp_path, "--policies", str(policies), "replay", "events.jsonl"))
    assert line == f"Error: SLA policy file {policies}: calendars: must be a non-empty mapping of name to calendar"


def test_a_replay_into_a_sqlite_file_it_cannot_create_stops_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-folder' / 'replay.db'}"
    line = one_clear_line(run(tmp_path, "replay", "events.jsonl", "--db", url))
    assert line == f"Error: cannot use the database {url}: OperationalError: unable to open database file"


def test_a_replay_into_an_unreachable_postgresql_stops_at_once(tmp_path: Path) -> None:
    url = UNREACHABLE_POSTGRES.format(port=free_port())
    line = one_clear_line(run(tmp_path, "replay", "events.jsonl", "--db", url))
    assert line.startswith("Error: cannot use the database postgresql+psycopg://tawasul:***@127.0.0.1:")
    assert "OperationalError: connection failed" in line and "s3cret" not in line


def test_a_report_from_an_unreachable_postgresql_says_so(tmp_path: Path) -> None:
    url = UNREACHABLE_POSTGRES.format(port=free_port())
    line = one_clear_line(run(tmp_path, "report", "--from", "2025-01-01", "--to", "2025-02-01", "--db", url))
    assert line.startswith("Error: cannot open the database postgresql+psycopg://tawasul:***@")
    assert "OperationalError: connection failed" in line and "s3cret" not in line


@pytest.mark.parametrize("url", ["mysql://localhost/tawasul", "not a url"])
def test_the_wall_display_refuses_a_database_url_it_cannot_use(tmp_path: Path, url: str) -> None:
    line = one_clear_line(run(tmp_path, "wallboard", "--port", str(free_port()), "--db", url))
    assert "unsupported database 'mysql'" in line or "Could not parse" in line


def test_a_replay_of_a_missing_file_is_refused_as_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "replay", "absent.jsonl")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "File 'absent.jsonl' does not exist" in result.stderr


def test_the_simulator_names_an_output_file_it_cannot_write(tmp_path: Path) -> None:
    out = tmp_path / "missing-folder" / "events.jsonl"
    line = one_clear_line(run(tmp_path, "simulate", "--from", "2025-01-01", "--to", "2025-01-02", "--out", str(out)))
    assert line == f"Error: cannot write {out}: No such file or directory"


@pytest.mark.parametrize(
    "command, option",
    [
        (["wallboard", "--port", "{port}"], "--port"),
        (["gateway", "--secrets", "gateway.yaml", "--port", "{port}"], "--port"),
        (["worker", "--metrics-port", "{port}"], "--metrics-port"),
        (["demo", "--wallboard-port", "{port}"], "--wallboard-port"),
    ],
)
def test_a_port_in_use_is_named_with_the_option_to_change(tmp_path: Path, command: list[str], option: str) -> None:
    import socket

    (tmp_path / "gateway.yaml").write_text('adapters:\n  - name: test\n    hmac_secret: "0123456789abcdef0123"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_clear_line(run(tmp_path, *(part.format(port=port) for part in command)))
    assert f":{port}: " in line and line.endswith(f"; choose another {option}")

"""`tawasul replay` + `tawasul report` end to end on the real broker, SQLite and PostgreSQL.

The report from the database equals the report computed directly from the file's events with the
pure domain code; replaying again, or replaying a shuffled copy with 10 % duplicates, changes nothing.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from schemas import parse_event
from tawasul.domain.period import parse_period
from tawasul.domain.policies import default_policy_path, load_policies
from tawasul.domain.report import build_report
from tests.support.sla_invariants import assert_no_sla_contradictions

REPO = Path(__file__).resolve().parents[2]
FROM, TO = "2025-03-02", "2025-03-05"


def _tawasul(*args: str, db: str, kafka: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAWASUL_KAFKA": kafka, "TAWASUL_DATABASE_URL": db, "TAWASUL_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "tawasul", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=600
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated days (Ramadan 2025 included), a few thousand events."""
    path = tmp_path_factory.mktemp("replay") / "days.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tawasul",
            "simulate",
            "--from",
            FROM,
            "--to",
            TO,
            "--seed",
            "11",
            "--scale",
            "0.4",
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


def _expected(path: Path) -> dict[str, object]:
    events = [parse_event(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    period = parse_period(FROM, TO)
    return build_report(events, period.start, period.end, load_policies(default_policy_path())).to_json()


def _report(db: str, kafka: str) -> dict[str, object]:
    result = _tawasul("report", "--from", FROM, "--to", TO, "--format", "json", db=db, kafka=kafka)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    policies = report.pop("policies")  # the replay stored the book it ran with, and the report used it
    assert (policies["source"], policies["sha256"], policies["mixed"]) == (
        "stored",
        load_policies(default_policy_path()).sha256,
        False,
    )
    return report


def test_replay_then_report_matches_the_domain_computation(
    recorded: Path, database_url: str, kafka_bootstrap: str
) -> None:
    replay = _tawasul("replay", str(recorded), "--no-progress", db=database_url, kafka=kafka_bootstrap)
    assert replay.returncode == 0, replay.stderr[-3000:]
    assert "replayed" in replay.stderr
    report = _report(database_url, kafka_bootstrap)
    expected = _expected(recorded)
    assert report == expected
    assert report["calls"]["offered"] > 50 and report["tickets"]["opened"] > 50  # type: ignore[index]
    assert report["tickets"]["first_response"]["met"] > 0  # type: ignore[index]
    assert_no_sla_contradictions(database_url)


def test_replaying_again_or_shuffled_with_duplicates_changes_nothing(
    recorded: Path, tmp_path: Path, kafka_bootstrap: str
) -> None:
    db = f"sqlite:///{tmp_path / 'again.db'}"
    first = _tawasul("replay", str(recorded), "--no-progress", db=db, kafka=kafka_bootstrap)
    assert first.returncode == 0, first.stderr[-3000:]
    once = _report(db, kafka_bootstrap)

    again = _tawasul("replay", str(recorded), "--no-progress", db=db, kafka=kafka_bootstrap)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _report(db, kafka_bootstrap) == once

    lines = [line for line in recorded.read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(5)
    lines += rng.sample(lines, len(lines) // 10)  # 10 % duplicates (same ids)

    def jittered(line: str) -> float:  # shuffle within the allowed lateness (5 minutes)
        when = datetime.fromisoformat(json.loads(line)["time"]).timestamp()
        return when + rng.uniform(0, 240)

    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(sorted(lines, key=jittered)) + "\n", encoding="utf-8")
    other_db = f"sqlite:///{tmp_path / 'shuffled.db'}"
    third = _tawasul("replay", str(shuffled), "--no-progress", db=other_db, kafka=kafka_bootstrap)
    assert third.returncode == 0, third.stderr[-3000:]
    assert _report(other_db, kafka_bootstrap) == once
    for database in (db, other_db):
        assert_no_sla_contradictions(database)

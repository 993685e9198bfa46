"""The wall display's API and the report give the same figures for the same day, and so do the
supervisor view and `tawasul report --by agent` (SQLite and PostgreSQL): one simulated day, plus
calls whose answer and abandonment conflict, goes through `tawasul replay` on the real broker
(processors, KPI snapshots, sink); then the board and the supervisor's figures as of the day's
last instant and `tawasul report` for that day are compared figure by figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sinks.db.engine import make_engine
from sinks.wallboard import WallboardConfig
from sinks.wallboard.queries import read_board
from sinks.wallboard.supervisor_queries import supervisor_rows
from tawasul.domain.supervisor import figures_by

REPO = Path(__file__).resolve().parents[2]
DUBAI = ZoneInfo("Asia/Dubai")
DAY, NEXT_DAY = "2025-11-12", "2025-11-13"
LAST_INSTANT = datetime(2025, 11, 13, tzinfo=DUBAI) - timedelta(microseconds=1)


def _tawasul(*args: str, db: str, kafka: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAWASUL_KAFKA": kafka, "TAWASUL_DATABASE_URL": db, "TAWASUL_LOG_LEVEL": "warning"}
    env.pop("TAWASUL_POLICIES", None)
    return subprocess.run(
        [sys.executable, "-m", "tawasul", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=600
    )


def _call(n: int, subject: str, steps: list[tuple[str, datetime, dict[str, object]]]) -> list[str]:
    return [
        json.dumps(
            {
                "specversion": "1.0",
                "id": f"agree-{n}-{i}",
                "source": "/tests/agree",
                "type": kind,
                "time": when.isoformat(),
                "subject": subject,
                "data": data,
            }
        )
        for i, (kind, when, data) in enumerate(steps)
    ]


def conflicting_calls() -> list[str]:
    """A call answered, then (a stray record) abandoned: the report counts it answered; and one
    abandoned, then answered: counted abandoned. Neither counts twice."""
    nine, ten = datetime(2025, 11, 12, 9, 0, tzinfo=DUBAI), datetime(2025, 11, 12, 10, 0, tzinfo=DUBAI)
    queue, agent = {"queue": "general"}, {"queue": "general", "agent": "agent-901"}
    return [
        *_call(
            1,
            "C-AGREE-1",
            [
                ("call.offered", nine, {**queue, "language": "ar"}),
                ("call.answered", nine + timedelta(seconds=8), agent),
                ("call.abandoned", nine + timedelta(seconds=30), queue),
                ("call.ended", nine + timedelta(minutes=4), {**agent, "wrap_up_seconds": 20}),
            ],
        ),
        *_call(
            2,
            "C-AGREE-2",
            [
                ("call.offered", ten, {**queue, "language": "en"}),
                ("call.abandoned", ten + timedelta(seconds=40), queue),
                ("call.answered", ten + timedelta(seconds=50), agent),
            ],
        ),
    ]


@pytest.fixture(scope="module")
def day_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agree") / "day.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tawasul",
            "simulate",
            "--from",
            DAY,
            "--to",
            NEXT_DAY,
            "--seed",
            "3",
            "--scale",
            "0.3",
            "--out",
            str(path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = path.read_text(encoding="utf-8").splitlines() + conflicting_calls()
    lines.sort(key=lambda line: datetime.fromisoformat(json.loads(line)["time"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.kafka
def test_the_wall_display_and_the_report_agree_on_a_day(
    day_file: Path, database_url: str, kafka_bootstrap: str
) -> None:
    replay = _tawasul("replay", str(day_file), "--no-progress", db=database_url, kafka=kafka_bootstrap)
    assert replay.returncode == 0, replay.stderr[-3000:]
    done = _tawasul(
        "report", "--from", DAY, "--to", NEXT_DAY, "--format", "json", db=database_url, kafka=kafka_bootstrap
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    engine = make_engine(database_url)
    try:
        config = WallboardConfig(database_url=database_url, breaches_shown=10_000)  # every breach
        board = read_board(engine, config, LAST_INSTANT).to_json()
    finally:
        engine.dispose()

    calls, figures = board["calls"], report["calls"]
    assert figures["offered"] > 30 and figures["answered"] > 20 and figures["abandoned"] > 0
    assert (calls["offered_today"], calls["answered_today"], calls["abandoned_today"]) == (
        figures["offered"],
        figures["answered"],
        figures["abandoned"],
    )
    assert sum(q["offered_today"] for q in calls["queues"]) == figures["offered"]
    assert (calls["service_level"], calls["asa_seconds"], calls["abandon_ratio"]) == (
        figures["service_level"],
        figures["average_speed_of_answer_seconds"],
        figures["abandon_ratio"],
    )

    walk_in = report["walk_in"]
    assert walk_in["visits"] > 10
    assert sum(c["checked_in_today"] for c in board["walk_in"]) == walk_in["visits"]
    assert sum(c["completed_today"] for c in board["walk_in"]) == walk_in["completed"]

    # satisfaction per channel: the board's channel of a survey is its ticket's channel, "call"
    # for a call, "walk_in" for a visit; the report splits the same answers into its sections
    shown = {s["channel"]: s for s in board["satisfaction"] if s["responses"]}
    tickets = report["tickets"]
    assert sum(s["responses"] for s in shown.values()) == (
        figures["surveys"] + tickets["surveys"] + walk_in["surveys"] + report.get("unmatched_surveys", 0)
    )
    compared = 0
    for channel, entry in shown.items():
        sections = {"call": figures, "walk_in": walk_in}
        ticket_side = tickets["by_channel"].get(channel, {}).get("satisfaction")
        if channel in sections and ticket_side is None:
            assert (entry["ratio"], entry["responses"]) == (
                sections[channel]["satisfaction"],
                sections[channel]["surveys"],
            ), channel
            compared += 1
        elif channel not in sections:
            assert entry["ratio"] == ticket_side, channel
            compared += 1
    assert compared >= 2

    # breaches today: the board's breach list (one entry per ticket and target) and the report's
    # breached targets of the day's tickets (every ticket of this file was opened today)
    listed = {
        (b["ticket_id"], b["target"])
        for b in board["tickets"]["breaches"]
        if datetime.fromisoformat(b["breached_at"]).astimezone(DUBAI).date() == LAST_INSTANT.date()
    }
    assert sum(tickets[target]["breached"] for target in ("first_response", "resolution")) > 0
    for target in ("first_response", "resolution"):
        assert sum(1 for _, t in listed if t == target) == tickets[target]["breached"], target


@pytest.mark.kafka
def test_the_supervisor_view_and_the_report_by_agent_agree_on_a_day(
    day_file: Path, database_url: str, kafka_bootstrap: str
) -> None:
    """Calls answered, average handle time, satisfaction and responses per agent: `/supervisor`'s
    figures for the day equal `tawasul report --by agent` for that day (one tally rule,
    `tawasul.domain.supervisor.ServiceTally`; a call abandoned before its answer counts for neither)."""
    replay = _tawasul("replay", str(day_file), "--no-progress", db=database_url, kafka=kafka_bootstrap)
    assert replay.returncode == 0, replay.stderr[-3000:]
    done = _tawasul(
        "report",
        "--from",
        DAY,
        "--to",
        NEXT_DAY,
        "--by",
        "agent",
        "--format",
        "json",
        db=database_url,
        kafka=kafka_bootstrap,
    )
    assert done.returncode == 0, done.stderr
    by_report = {
        g["agent"]: (g["calls_answered"], g["average_handle_seconds"], g["satisfaction"], g["surveys"])
        for g in json.loads(done.stdout)["groups"]
        if g["agent"] is not None
    }
    day_start = datetime(2025, 11, 12, tzinfo=DUBAI)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            calls, surveys, tickets = supervisor_rows(connection, day_start, LAST_INSTANT)
    finally:
        engine.dispose()
    figures = figures_by("agent", day_start, LAST_INSTANT + timedelta(microseconds=1), calls, surveys, tickets)
    by_supervisor = {
        f.name: (f.calls_answered, f.average_handle_seconds, f.satisfaction, f.responses)
        for f in figures
        if f.calls_answered or f.responses
    }
    by_report = {agent: row for agent, row in by_report.items() if row[0] or row[3]}
    assert by_supervisor == by_report
    assert sum(row[0] for row in by_report.values()) > 20 and sum(row[3] for row in by_report.values()) > 3
    assert by_supervisor["agent-901"][0] == 1  # C-AGREE-2 was abandoned before its answer

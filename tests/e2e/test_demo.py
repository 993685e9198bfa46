"""`tawasul demo` brings the whole pipeline up: traffic flows into the database, the wall display
answers from it and the sink serves Prometheus metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.support.kafka import unique
from tests.support.postgres import free_port
from tests.support.sla_invariants import assert_no_sla_contradictions

REPO = Path(__file__).resolve().parents[2]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return response.read().decode("utf-8")


def _counts(db: str) -> tuple[int, int, set[str]]:
    """Stored events, tickets and event types (zeros while the sink has not created its tables)."""
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            events = connection.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
            tickets = connection.execute(text("SELECT COUNT(*) FROM tickets")).scalar_one()
            types = {row[0] for row in connection.execute(text("SELECT DISTINCT type FROM events"))}
    except OperationalError:
        return 0, 0, set()
    finally:
        engine.dispose()
    return events, tickets, types


def test_demo_runs_the_pipeline_end_to_end(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Two days of history: the simulated traffic follows working hours, weekends and holidays
    # from the wall clock, and half a day before dawn on a weekend holds under 100 events.
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    wall, sink_metrics, worker_metrics = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "TAWASUL_KAFKA": kafka_bootstrap,
        "TAWASUL_DATABASE_URL": db,
        "TAWASUL_LOG_LEVEL": "warning",
        "TAWASUL_TOPIC_PREFIX": unique("demo") + ".",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tawasul",
            "demo",
            "--duration",
            "150",
            "--history-days",
            "2",
            "--wallboard-port",
            str(wall),
            "--metrics-port",
            str(sink_metrics),
            "--worker-metrics-port",
            str(worker_metrics),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wallboard: dict[str, object] = {}
    metrics = ""
    try:
        deadline = time.monotonic() + 70
        while time.monotonic() < deadline:
            time.sleep(3)
            try:
                wallboard = json.loads(_get(f"http://127.0.0.1:{wall}/api/wallboard"))
                metrics = _get(f"http://127.0.0.1:{sink_metrics}/metrics")
            except OSError:
                continue
            events, tickets, _types = _counts(db)
            if 'tawasul_sink_rows_written_total{table="events"}' in metrics and events > 100 and tickets > 10:
                break
        process.send_signal(signal.SIGINT)  # Ctrl-C: the demo stops its services cleanly
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError(f"the demo did not stop on Ctrl-C:\n{stderr[-3000:]}") from None
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    assert "wall display:" in stderr and "events published" in stderr
    assert wallboard, "the wall display never answered"
    assert 'tawasul_sink_rows_written_total{table="events"}' in metrics
    events, tickets, types = _counts(db)
    assert events > 100
    assert tickets > 10
    assert {"call.offered", "ticket.opened", "survey.submitted"} <= types
    assert_no_sla_contradictions(db)

"""`tawasul replay --jobs N`: the SLA engine in N processes by partition group, one KPI process
fed by all of them, stores exactly what one process stores."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kafka

QUERIES = {
    "outcomes": "SELECT * FROM sla_outcomes",
    "tickets": "SELECT * FROM tickets",
    "targets": "SELECT * FROM ticket_targets",
    # a zero `tickets.open|now|` key exists for each backlog class a ticket was seen in at a
    # flush: which ones depends on the batch boundaries, so two runs of one engine differ there
    "figures": "SELECT key, value, count FROM kpi_snapshots "
    "WHERE NOT (key LIKE 'tickets.open|now|%' AND value = 0 AND count = 0)",
    "as_of": "SELECT max(as_of) FROM kpi_snapshots",
}


def replay(path: Path, db: str, kafka: str, jobs: int) -> None:
    env = {**os.environ, "TAWASUL_KAFKA": kafka, "TAWASUL_DATABASE_URL": db, "TAWASUL_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "tawasul", "replay", str(path), "--no-progress", "--jobs", str(jobs)]
    result = subprocess.run(
        [*command, "--timeout", "240"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


def digests(db: str) -> dict[str, tuple[int, str]]:
    """Per query: (rows, SHA-256 of the sorted rows)."""
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            out = {}
            for name, sql in QUERIES.items():
                rows = sorted(repr(tuple(row)) for row in connection.execute(text(sql)))
                out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
            return out
    finally:
        engine.dispose()


def test_three_sla_processes_store_what_one_stores(tmp_path: Path, kafka_bootstrap: str) -> None:
    path = tmp_path / "days.jsonl"
    simulated = subprocess.run(
        [sys.executable, "-m", "tawasul", "simulate", "--from", "2025-03-26", "--to", "2025-04-01",
         "--seed", "5", "--scale", "0.25", "--tail", "--out", str(path), "--no-progress"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    one, three = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'three.db'}"
    replay(path, one, kafka_bootstrap, jobs=1)
    replay(path, three, kafka_bootstrap, jobs=3)
    single, parallel = digests(one), digests(three)
    assert single["outcomes"][0] > 100 and single["tickets"][0] > 100 and single["figures"][0] > 500
    assert parallel == single

"""Digest of everything a replay stores and reports, to prove a refactoring changes no output.

Simulates a period with a fixed seed, replays it through `tawasul replay` into a fresh SQLite
file, then prints one SHA-256 per table (rows sorted, wall-clock columns left out) and one per
report format. Two code versions give the same digests exactly when their outputs are equal.

Usage: python bench/digest.py [--from 2025-01-01 --to 2025-07-01] [--engine batch|faust] [--jobs N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WALL_CLOCK_COLUMNS = frozenset({"stored_at", "first_used_at", "last_used_at", "seen_at", "expires_at"})
"""Columns that hold when a row was written, not what the events say."""
RUN_TABLES = frozenset({"gateway_nonces", "alembic_version"})
"""Tables that describe one run or one installation, not the replayed data."""
WALL_CLOCK_FIELDS = re.compile(r'"(first_used_at|last_used_at)": "[^"]*"')
"""Report fields that say when this run used a policy book."""
SNAPSHOT_FIGURES = "SELECT key, value, count FROM kpi_snapshots WHERE coalesce(value, 0) != 0 OR count != 0"
"""A KPI snapshot's figures. Its `as_of`, and which figures that are zero at the end have a row, depend
on how the partitions' streams interleave at the single aggregator, so they are left out."""


def _tawasul(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tawasul", *args], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    if result.returncode not in (0, 1):
        raise SystemExit(f"tawasul {args[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def _table_digests(db: str) -> dict[str, str]:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db)
    digests: dict[str, str] = {}
    try:
        with engine.connect() as connection:
            for table in sorted(inspect(connection).get_table_names()):
                if table in RUN_TABLES:
                    continue
                columns = [
                    c["name"] for c in inspect(connection).get_columns(table) if c["name"] not in WALL_CLOCK_COLUMNS
                ]
                quoted = ", ".join(f'"{c}"' for c in columns)
                query = SNAPSHOT_FIGURES if table == "kpi_snapshots" else f'SELECT {quoted} FROM "{table}"'
                rows = connection.execute(text(query)).all()
                lines = sorted(json.dumps([_plain(v) for v in row], sort_keys=True, default=str) for row in rows)
                body = "\n".join(lines).encode()
                digests[table] = f"{len(lines):>8} rows  {hashlib.sha256(body).hexdigest()[:16]}"
    finally:
        engine.dispose()
    return digests


def _plain(value: object) -> object:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", default="2025-01-01")
    parser.add_argument("--to", dest="end", default="2025-07-01")
    parser.add_argument("--scale", default="1.0")
    parser.add_argument("--engine", default="batch", choices=("batch", "faust"))
    parser.add_argument("--jobs", default=None, help="tawasul replay --jobs (when the replay has it)")
    parser.add_argument("--kafka", default=os.environ.get("TAWASUL_KAFKA", "localhost:9092"))
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tawasul-digest-"))
    events = work / "events.jsonl"
    db = f"sqlite:///{work / 'replay.db'}"
    env = {**os.environ, "TAWASUL_KAFKA": options.kafka, "TAWASUL_DATABASE_URL": db, "TAWASUL_LOG_LEVEL": "error"}
    simulate = ["simulate", "--from", options.start, "--to", options.end, "--scale", options.scale, "--seed", "7"]
    _tawasul([*simulate, "--out", str(events), "--no-progress"], env)
    replay = ["replay", str(events), "--no-progress", "--engine", options.engine]
    if options.jobs:
        replay += ["--jobs", options.jobs]
    _tawasul(replay, env)
    for table, digest in _table_digests(db).items():
        print(f"table  {table:<16} {digest}")
    period = ["report", "--from", options.start, "--to", options.end]
    for name, extra in {
        "json": ["--format", "json"],
        "md-en": ["--format", "md"],
        "md-ar": ["--format", "md", "--lang", "ar"],
        "by-agent": ["--by", "agent"],
        "by-team": ["--by", "team", "--format", "md"],
    }.items():
        output = WALL_CLOCK_FIELDS.sub(r'"\1": "-"', _tawasul([*period, *extra], env))
        print(f"report {name:<16} {hashlib.sha256(output.encode()).hexdigest()[:16]}")


if __name__ == "__main__":
    main()

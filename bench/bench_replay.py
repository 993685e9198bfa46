"""Benchmark: the simulator's half-year through `tawasul replay`, then `tawasul report`.

Prints, in one run on one machine:
  * the raw kafka-python consume rate of the same events (published once to a scratch topic),
  * the end-to-end replay rate (events/s from file to stored rows) and rows/s written,
  * the report's time, and replay + report together (goal: under 60 s; replay >= 20,000 events/s).

With `--jobs 1,2` the replay runs once per value (`tawasul replay --jobs`, each into a fresh
database of its own; the report reads the last), and each run's outputs are compared with the
first's (the digest of the engine tests: outcomes, tickets, targets, figures).

Usage: python bench/bench_replay.py [--from 2025-01-01 --to 2025-07-01] [--scale 1.0] [--db URL] [--jobs 1,2]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tawasul.infra.topics import TopicSpec, ensure_topics

REPO = Path(__file__).resolve().parents[1]
REPLAY_GOAL = 20_000
"""events/s, file to stored rows"""


def _conditions() -> str:
    import kafka

    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, Python {platform.python_version()}, "
        f"kafka-python {kafka.__version__}"
    )


def _raw_consume_rate(bootstrap: str, path: Path) -> tuple[int, float]:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, specs=(TopicSpec(topic, 6),))
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=262144)
    with path.open("rb") as handle:
        for line in handle:
            producer.send(topic, value=line.rstrip(b"\n"))
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=10_000)
    partitions = [TopicPartition(topic, p) for p in range(6)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    total = sum(consumer.end_offsets(partitions).values())
    began, seen = time.perf_counter(), 0
    while seen < total:
        for batch in consumer.poll(timeout_ms=1000).values():
            seen += len(batch)
    seconds = time.perf_counter() - began
    consumer.close()
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.delete_topics([topic])
    admin.close()
    return seen, seconds


def _rows(db: str) -> dict[str, int]:
    """Rows per table of the replay's database."""
    from sqlalchemy import create_engine, func, select

    from sinks.db.models import metadata

    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            return {
                name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes and their descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str, float]:
    """Run `tawasul ARGS`; returns its wall seconds, output, and CPU seconds (all processes)."""
    began = time.perf_counter()
    cpu_before = _children_cpu()
    result = subprocess.run(
        [sys.executable, "-m", "tawasul", *args], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    seconds = time.perf_counter() - began
    cpu_seconds = _children_cpu() - cpu_before
    if result.returncode not in (0, 1):
        raise SystemExit(f"tawasul {args[0]} failed:\n{result.stderr[-3000:]}")
    return seconds, result.stderr + result.stdout, cpu_seconds


def _replay(
    engine: str, jobs: int | None, events_file: Path, count: int, env: dict[str, str], db: str
) -> tuple[dict[str, str], float]:
    """One `tawasul replay`, its figures printed; returns the digest of its outputs and its seconds."""
    args = ["replay", str(events_file), "--no-progress", "--engine", engine]
    if jobs is not None:
        args += ["--jobs", str(jobs)]
    replay_seconds, output, replay_cpu = _run(args, env)
    summary = next((line for line in output.splitlines() if line.startswith("replayed")), output[-500:])
    print(
        f"replay (engine {engine}, jobs {jobs or 'default'}): {replay_seconds:.1f} s wall = "
        f"{count / replay_seconds:,.0f} events/s end to end; "
        f"CPU {replay_cpu:.1f} s in all its processes ({replay_cpu / replay_seconds:.2f} CPUs busy)"
    )
    print(f"        {summary}")
    cpus = os.cpu_count() or 1
    floor = replay_cpu / cpus
    print(
        f"        bound on {cpus} CPUs: this much CPU takes at least {floor:.1f} s even with every CPU busy "
        f"(at most {count / floor:,.0f} events/s); {REPLAY_GOAL:,} events/s would need at most "
        f"{count / REPLAY_GOAL * cpus:.1f} s of CPU in all"
    )
    rows = _rows(db)
    print(
        f"rows written: {sum(rows.values()):,} = {sum(rows.values()) / replay_seconds:,.0f} rows/s over the replay ("
        + ", ".join(f"{table} {n:,}" for table, n in rows.items())
        + ")"
    )
    return _digest(db), replay_seconds


DIGESTS = {
    "outcomes": "SELECT * FROM sla_outcomes",
    "tickets": "SELECT * FROM tickets",
    "targets": "SELECT * FROM ticket_targets",
    "figures": "SELECT key, value, count FROM kpi_snapshots "
    "WHERE NOT (key LIKE 'tickets.open|now|%' AND value = 0 AND count = 0)",
    "as_of": "SELECT max(as_of) FROM kpi_snapshots",
}
"""What a replay stored, as the engine tests compare it (zero `tickets.open|now|` keys depend on
batch boundaries)."""


def _digest(db: str) -> dict[str, str]:
    import hashlib

    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            return {
                name: hashlib.sha256(
                    "\n".join(sorted(repr(tuple(row)) for row in connection.execute(text(sql)))).encode()
                ).hexdigest()
                for name, sql in DIGESTS.items()
            }
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", default="2025-01-01")
    parser.add_argument("--to", dest="end", default="2025-07-01")
    parser.add_argument("--scale", default="1.0")
    parser.add_argument("--kafka", default=os.environ.get("TAWASUL_KAFKA", "localhost:9092"))
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--engine", default="batch", choices=("batch", "faust"), help="tawasul replay --engine")
    parser.add_argument("--jobs", default=None, help="tawasul replay --jobs, or several: 1,2 (default: its default)")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tawasul-bench-replay-"))
    events_file = work / "events.jsonl"
    db = options.db or f"sqlite:///{work / 'replay.db'}"
    env = {**os.environ, "TAWASUL_KAFKA": options.kafka, "TAWASUL_DATABASE_URL": db, "TAWASUL_LOG_LEVEL": "error"}

    print(f"machine: {_conditions()}")
    seconds, _, _ = _run(
        [
            "simulate",
            "--from",
            options.start,
            "--to",
            options.end,
            "--scale",
            options.scale,
            "--seed",
            "7",
            "--out",
            str(events_file),
            "--no-progress",
        ],
        env,
    )
    count = sum(1 for _ in events_file.open("rb"))
    print(f"simulated {count:,} events ({events_file.stat().st_size / 1e6:.0f} MB) in {seconds:.1f} s")

    raw_count, raw_seconds = _raw_consume_rate(options.kafka, events_file)
    print(
        f"raw kafka-python consume: {raw_count:,} events in {raw_seconds:.1f} s = "
        f"{raw_count / raw_seconds:,.0f} events/s"
    )

    runs = [None] if options.jobs is None else [int(n) for n in options.jobs.split(",")]
    first: dict[str, str] | None = None
    for index, jobs in enumerate(runs):
        if len(runs) > 1:
            db = f"sqlite:///{work / f'replay-{index}.db'}" if options.db is None else db
            env["TAWASUL_DATABASE_URL"] = db
        digest, replay_seconds = _replay(options.engine, jobs, events_file, count, env, db)
        if first is None:
            first = digest
        elif options.db is None:
            print(f"        outputs identical to the first run's: {'yes' if digest == first else 'NO'}")

    report_seconds, _, _ = _run(["report", "--from", options.start, "--to", options.end, "--format", "json"], env)
    print(f"report: {report_seconds:.1f} s")
    print(
        f"replay + report: {replay_seconds + report_seconds:.1f} s "
        f"(goal: < 60 s; replay goal >= {REPLAY_GOAL:,} events/s)"
    )


if __name__ == "__main__":
    main()
